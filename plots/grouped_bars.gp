# grouped_bars.gp - one bar group per row of a TSV written by plots/tsv.py, one bar per series,
# a whisker from the bar's top (p50) up to p99 (drawn as a capped vector). Called by plots/plot.py:
#
#   gnuplot -e "datafile='d.tsv'; outbase='run/plots/x.gnuplot'; nseries=2; \
#               colors='#0072B2 #D55E00'; titles='"same core" "cross core"'; \
#               ptitle='...'; ytitle='...'; caption='...'; logy=1" plots/grouped_bars.gp
#
# Writes outbase.png (pngcairo) and outbase.svg. Column 1 is the group; series i has its
# value in column 2i and its whisker top in column 2i+1. NaN cells are left out. CPython series
# (pyser='0 1 …') are filled lighter in the same colour as their mproc twin. The key stands
# right of the plot; notes (nnotes, note1..) are printed above the caption.

if (!exists("logy")) logy = 1
if (!exists("caption")) caption = ""
if (!exists("ptitle")) ptitle = ""
if (!exists("ytitle")) ytitle = ""
# pyser: one word per series, 1 for a CPython series (drawn lighter), 0 for mproc's.
if (!exists("pyser")) pyser = ""
ispy(i) = (word(pyser, i) eq "1")
if (!exists("nnotes")) nnotes = 0

set encoding utf8
set datafile separator "\t"
set datafile missing "NaN"
set title ptitle noenhanced
set ylabel ytitle noenhanced
set label 1 caption at screen 0.01, screen 0.02 left font ",8" noenhanced
do for [i=1:nnotes] {
	set label (10 + i) value("note" . i) at screen 0.01, screen (0.02 + 0.03 * (nnotes - i + 1)) \
		left font ",8" noenhanced
}
set bmargin 5 + 1.5 * nnotes
# The key right of the plot, never over the bars (tall bars fill every corner).
set key outside right top noenhanced
set grid ytics
set xtics nomirror noenhanced rotate by -20
set ytics nomirror
set border 3
set style fill solid 0.9 border -1
if (logy) set logscale y

bw = 0.8 / nseries
xpos(i) = column(0) - 0.4 + (i - 0.5) * bw
set xrange [-0.6:*]
set offsets 0, 0.6, graph 0.05, graph 0.05

do for [fmt in "png svg"] {
	if (fmt eq "png") {
		set terminal pngcairo size 960,560 font "sans,10" noenhanced
	} else {
		set terminal svg size 960,560 dynamic font "sans,10" noenhanced
	}
	set output outbase . "." . fmt
	plot datafile using (column(0)):(NaN):xtic(1) with points ps 0 notitle, \
	     for [i=1:nseries] datafile using (xpos(i)):(column(2*i)):(bw) \
		with boxes lc rgb word(colors, i) fs solid (ispy(i) ? 0.35 : 0.9) border -1 \
		title word(titles, i), \
	     for [i=1:nseries] datafile \
		using (xpos(i)):(column(2*i)):(0):(column(2*i+1) - column(2*i)) \
		with vectors head size screen 0.006,90 lc rgb "#222222" notitle
	unset output
}
