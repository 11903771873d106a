# compile-heavy: many distinct methods, each called past YJIT's threshold
n = (ARGV[0] || 2000).to_i
total = 0
n.times do |i|
  src = <<~RUBY
    def m#{i}(x)
      s = 0
      j = 0
      while j < x
        if j % 3 == 0
          s += j * #{i}
        else
          s -= j + #{i % 7}
        end
        j += 1
      end
      s
    end
  RUBY
  eval(src)
  30.times { total += send(:"m#{i}", 20) }
end
puts total
