# toggle_latency as PNG, from the medians scripts/gnuplot_data.py writes.
#
#   gnuplot -e "datafile='DIR/toggle_latency_gnuplot.dat'; outfile='DIR/toggle_latency_gnuplot.png'; \
#               plottitle='toggle_latency - machine (chip)'; footnote='wxbench ...'" scripts/toggle_latency.gp
#
# Data columns: 1 strategy, then median/min/max of ns per op for flip (2-4), patch (5-7),
# redundant (8-10) and baseline (11-13); "?" where a value is absent or not ok.

if (!exists("datafile")) { print "toggle_latency.gp: set datafile='...' with gnuplot -e"; exit status 2 }
if (!exists("outfile")) { outfile = "toggle_latency_gnuplot.png" }
if (!exists("plottitle")) { plottitle = "toggle_latency" }
if (!exists("footnote")) { footnote = "" }

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo noenhanced size 1100,650 font "DejaVu Sans,10"
} else {
    set terminal png noenhanced size 1100,650
}
set output outfile
set datafile missing "?"

set label 2 plottitle at screen 0.5, screen 0.975 center font ",13"
set tmargin 4
set label 1 footnote at screen 0.01, screen 0.02 font ",8" textcolor rgb "#555555"
set bmargin 6
set logscale y
set format y "%g"
set ylabel "ns per op (median; whiskers min-max over repetitions)"
set xlabel "strategy"
set grid ytics lc rgb "#dddddd"
set offsets 0.6, 0.6, 0, 0
set xtics scale 0
set key outside right top

plot datafile using ($0-0.22):2:3:4:xtic(1) with yerrorbars pt 7 ps 1.3 lc rgb "#1f77b4" title "flip (W->X->W round trip)", \
     datafile using ($0):5:6:7 with yerrorbars pt 5 ps 1.3 lc rgb "#d62728" title "patch (one verified patch)", \
     datafile using ($0+0.22):8:9:10 with yerrorbars pt 9 ps 1.5 lc rgb "#2ca02c" title "redundant (state already in force)", \
     datafile using ($0-0.4):11:(0.8):(0) with vectors nohead dt 2 lw 1.5 lc rgb "#555555" title "baseline (patch loop, no permission change)"
