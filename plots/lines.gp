# lines.gp - one line per series over a numeric x (column 1 of a TSV written by plots/tsv.py;
# series i has its value in column 2i). Called by plots/plot.py:
#
#   gnuplot -e "datafile='d.tsv'; outbase='run/plots/x.gnuplot'; nseries=3; \
#               colors='#0072B2 #009E73 #56B4E9'; titles='a b c'; ptitle='...'; \
#               xtitle='...'; ytitle='...'; caption='...'; logx=1; logy=1" plots/lines.gp
#
# Writes outbase.png (pngcairo) and outbase.svg. NaN cells are left out. CPython series
# (pyser='0 1 …') are dashed, in the same colour as their mproc twin.

if (!exists("logx")) logx = 1
if (!exists("logy")) logy = 1
if (!exists("caption")) caption = ""
if (!exists("ptitle")) ptitle = ""
if (!exists("xtitle")) xtitle = ""
if (!exists("ytitle")) ytitle = ""
# pyser: one word per series, 1 for a CPython series (drawn dashed), 0 for mproc's.
if (!exists("pyser")) pyser = ""

set datafile separator "\t"
set datafile missing "NaN"
set title ptitle noenhanced
set xlabel xtitle noenhanced
set ylabel ytitle noenhanced
set label 1 caption at screen 0.01, screen 0.02 left font ",8" noenhanced
set bmargin 6
set key outside right top noenhanced
set grid xtics ytics
set border 3
set xtics nomirror
set ytics nomirror
if (logx) set logscale x 2
if (logx) set format x "%.0b%B"
if (logy) set logscale y
set offsets graph 0.02, graph 0.02, graph 0.05, graph 0.05

do for [fmt in "png svg"] {
	if (fmt eq "png") {
		set terminal pngcairo size 960,560 font "sans,10" noenhanced
	} else {
		set terminal svg size 960,560 dynamic font "sans,10" noenhanced
	}
	set output outbase . "." . fmt
	plot for [i=1:nseries] datafile using 1:(column(2*i)) \
		with linespoints lw 2 pt 7 ps 0.8 lc rgb word(colors, i) \
		dt 1+(word(pyser, i) eq "1") title word(titles, i)
	unset output
}
