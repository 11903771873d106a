# mprotect_tlb as PNG, from the medians scripts/gnuplot_data.py writes.
#
#   gnuplot -e "datafile='DIR/mprotect_tlb_gnuplot.dat'; outfile='DIR/mprotect_tlb_gnuplot.png'; \
#               nseries=8; colors='1 2 1 2'; dashes='1 1 2 2'; has_tlb=1; plottitle='...'; footnote='...'" \
#           scripts/mprotect_tlb.gp
#
# The data file holds one block per series (variant and victim count), blocks separated by
# two blank lines, each starting with its title line. Columns: 1 pages, 2-4 median/min/max
# of ns per op, 5 median TLB shootdowns per op ("?" where not counted).
# colors and dashes give each series' colour index (per victim count) and dash type
# (1 thread victims, 2 process victims, 3 noop).

if (!exists("datafile") || !exists("nseries")) { print "mprotect_tlb.gp: set datafile='...' and nseries=N with gnuplot -e"; exit status 2 }
if (!exists("outfile")) { outfile = "mprotect_tlb_gnuplot.png" }
if (!exists("plottitle")) { plottitle = "mprotect_tlb" }
if (!exists("footnote")) { footnote = "" }
if (!exists("has_tlb")) { has_tlb = 0 }
if (!exists("colors")) { colors = "" }
if (!exists("dashes")) { dashes = "" }

palette = "#440154 #3b528b #21918c #5ec962 #b5de2b #fde725 #31688e #35b779 #90d743 #443983"
colour(i) = (words(colors) >= i + 1) ? word(palette, (int(word(colors, i + 1)) % 10) + 1) : word(palette, (i % 10) + 1)
dash(i) = (words(dashes) >= i + 1) ? int(word(dashes, i + 1)) : 1

height = has_tlb ? 1100 : 650
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo noenhanced size 1100,height font "DejaVu Sans,10"
} else {
    set terminal png noenhanced size 1100,height
}
set output outfile
set datafile missing "?"
set logscale x 2
set format x "%g"
set xlabel "region size (pages)"
set grid lc rgb "#dddddd"
set key outside right top

set label 2 plottitle at screen 0.5, screen (has_tlb ? 0.985 : 0.975) center font ",13"
set tmargin (has_tlb ? 3 : 4)
set bmargin 5
if (has_tlb) { set multiplot layout 2,1 }
set label 1 footnote at screen 0.01, screen 0.015 font ",8" textcolor rgb "#555555"

set logscale y
set format y "%g"
set ylabel "ns per op (median; whiskers min-max)"
plot for [i=0:nseries-1] datafile index i using 1:2:3:4 with yerrorlines lw 1.5 pt 7 ps 0.8 \
     lc rgb colour(i) dt dash(i) title columnheader(1)

if (has_tlb) {
    unset label 1
    unset label 2
    unset logscale y
    set yrange [0:*]
    set ylabel "TLB shootdowns per op (median)"
    plot for [i=0:nseries-1] datafile index i using 1:5 with linespoints lw 1.5 pt 7 ps 0.8 \
         lc rgb colour(i) dt dash(i) title columnheader(1)
    unset multiplot
}
