# lines.gp - one line per series over a numeric x (column 1 of a TSV written by plots/tsv.py;
# series i has its value in column 2i). Called by plots/plot.py:
#
#   gnuplot -e "datafile='d.tsv'; outbase='run/plots/x.gnuplot'; nseries=3; \
#               colors='#0072B2 #009E73 #56B4E9'; titles='\"a\" \"b c\" \"d\"'; \
#               points='7 5 9'; ptitle='...'; xtitle='...'; ytitle='...'; caption='...'; \
#               logx=1; logy=1; xlo=48; xhi=1.4e6; xticscmd='set xtics (\"64 B\" 64, ...)'; \
#               ideal=0; budget=0; nnotes=1; note1='...'" plots/lines.gp
#
# Writes outbase.png (pngcairo) and outbase.svg. NaN cells are left out. CPython series
# (pyser='0 1 …') are dashed, in the same colour as their mproc twin; every series has its own
# point type (points), so lines lying on each other stay apart. plot.py computes the x range
# (xlo, xhi: never below zero), the ticks (xticscmd: the measured x values, sizes in B/KiB/MiB,
# counts as integers) and the notes (note1..noteN, printed above the caption). ideal=1 (speedup
# plots) adds the ideal-speedup line, min(x, budget), and marks the usable CPU budget.

if (!exists("logx")) logx = 1
if (!exists("logy")) logy = 1
if (!exists("caption")) caption = ""
if (!exists("ptitle")) ptitle = ""
if (!exists("xtitle")) xtitle = ""
if (!exists("ytitle")) ytitle = ""
# pyser: one word per series, 1 for a CPython series (drawn dashed), 0 for mproc's.
if (!exists("pyser")) pyser = ""
if (!exists("points")) points = ""
if (!exists("xticscmd")) xticscmd = ""
if (!exists("ideal")) ideal = 0
if (!exists("budget")) budget = 0
if (!exists("nnotes")) nnotes = 0
pt(i) = (words(points) >= i) ? int(word(points, i)) : 7
idealf(x) = (budget > 0 && x > budget) ? budget : x

set encoding utf8
set datafile separator "\t"
set datafile missing "NaN"
set title ptitle noenhanced
set xlabel xtitle noenhanced
set ylabel ytitle noenhanced
set label 1 caption at screen 0.01, screen 0.02 left font ",8" noenhanced
do for [i=1:nnotes] {
	set label (10 + i) value("note" . i) at screen 0.01, screen (0.02 + 0.03 * (nnotes - i + 1)) \
		left font ",8" noenhanced
}
set bmargin 6 + 1.5 * nnotes
set key outside right top noenhanced
set grid xtics ytics
set border 3
set xtics nomirror
set ytics nomirror
if (logx) set logscale x 2
if (logy) set logscale y
if (exists("xlo") && exists("xhi")) {
	set xrange [xlo:xhi]
	set offsets 0, 0, graph 0.05, graph 0.05
} else {
	set offsets graph 0.02, graph 0.02, graph 0.05, graph 0.05
}
if (strlen(xticscmd) > 0) { eval xticscmd } else { if (!logx) { set xtics 1 } }
if (ideal && budget > 0) {
	set arrow 1 from first budget, graph 0 to first budget, graph 1 nohead dt 3 lw 1.2 \
		lc rgb "#555555" back
	# The label on the side of the line with room (the budget is often the largest x).
	if (exists("xlo") && exists("xhi") && budget > (xlo + xhi) / 2) {
		set label 2 sprintf("usable CPUs: %d", budget) at first budget, graph 0.97 right \
			offset -0.5, 0 font ",9" textcolor rgb "#333333"
	} else {
		set label 2 sprintf("usable CPUs: %d", budget) at first budget, graph 0.97 left \
			offset 0.5, 0 font ",9" textcolor rgb "#333333"
	}
}
idealtitle = (budget > 0) ? sprintf("ideal (up to %d CPUs)", budget) : "ideal (1 CPU per worker)"

do for [fmt in "png svg"] {
	if (fmt eq "png") {
		set terminal pngcairo size 960,560 font "sans,10" noenhanced
	} else {
		set terminal svg size 960,560 dynamic font "sans,10" noenhanced
	}
	set output outbase . "." . fmt
	if (ideal) {
		plot for [i=1:nseries] datafile using 1:(column(2*i)) \
			with linespoints lw 2 pt pt(i) ps 1.0 lc rgb word(colors, i) \
			dt 1+(word(pyser, i) eq "1") title word(titles, i), \
		     idealf(x) with lines dt 2 lw 1.2 lc rgb "#555555" title idealtitle
	} else {
		plot for [i=1:nseries] datafile using 1:(column(2*i)) \
			with linespoints lw 2 pt pt(i) ps 1.0 lc rgb word(colors, i) \
			dt 1+(word(pyser, i) eq "1") title word(titles, i)
	}
	unset output
}
