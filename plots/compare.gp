# compare.gp - one registry plot for several runs side by side (multiplot, one panel per run,
# the same y range, series and colours in every panel). Called by plots/compare.py:
#
#   gnuplot -e "datafiles='A.tsv B.tsv'; ptitle1='A: host'; ptitle2='B: host'; kind='lines'; \
#               outbase='out/plots/x.gnuplot'; nseries=2; colors='#0072B2 #D55E00'; \
#               titles='same_core cross_core'; pyser='0 0'; ptitle='...'; ytitle='...'; \
#               xtitle='...'; caption='...'; logx=0; logy=1; ymin=1; ymax=1e6; \
#               xmin=0; xmax=1; nodata='0 1'" plots/compare.gp
#
# Each TSV is laid out as plots/tsv.py writes it, with the same columns in every file (series
# missing from a run are NaN). The x range is given (xmin, xmax: the x values for lines, the
# group count for bars) so that a run without data draws an empty panel, marked by nodata;
# a lines plot's x axis never starts below zero (x values are sizes and counts).
# Optional, from plot.compare_gnuplot_vars(): points (a point type per series), xticscmd (the
# measured x values as ticks: sizes in B/KiB/MiB, counts as integers; without it a log x axis
# gets powers of 4 so labelled, a short linear one integer ticks), ideal=1 with budgets='2 4'
# (a speedup plot: the ideal line min(x, budget) and the usable CPU budget of each run's
# panel), nnotes and note1..noteN (lines above the caption). Keys stand outside the data.
# Writes outbase.png (pngcairo) and outbase.svg.

if (!exists("logx")) logx = 0
if (!exists("logy")) logy = 1
if (!exists("caption")) caption = ""
if (!exists("ptitle")) ptitle = ""
if (!exists("xtitle")) xtitle = ""
if (!exists("ytitle")) ytitle = ""
if (!exists("pyser")) pyser = ""
ispy(i) = (word(pyser, i) eq "1")
if (!exists("points")) points = ""
if (!exists("xticscmd")) xticscmd = ""
if (!exists("ideal")) ideal = 0
if (!exists("budgets")) budgets = ""
if (!exists("nnotes")) nnotes = 0
pt(i) = (words(points) >= i) ? int(word(points, i)) : 7
nruns = words(datafiles)
budget = 0
idealf(x) = (budget > 0 && x > budget) ? budget : x
# Sizes as the other plots spell them (B, KiB, MiB, GiB), for the powers of 4 of a log x axis.
sizelabel(v) = v >= 2**30 ? sprintf("%g GiB", v / 2.0**30) : v >= 2**20 ? \
	sprintf("%g MiB", v / 2.0**20) : v >= 2**10 ? sprintf("%g KiB", v / 2.0**10) : \
	sprintf("%g B", v)
if (kind eq "lines" && !logx && xmin < 0) xmin = 0

set encoding utf8
set datafile separator "\t"
set datafile missing "NaN"
set border 3
set xtics nomirror
set ytics nomirror
set key outside right top noenhanced font ",8"
set style fill solid 0.9 border -1
set yrange [ymin:ymax]
if (logy) set logscale y

bw = 0.8 / nseries
xpos(i) = column(0) - 0.4 + (i - 0.5) * bw

do for [fmt in "png svg"] {
	if (fmt eq "png") {
		set terminal pngcairo size (480 * nruns + 120),600 font "sans,10" noenhanced
	} else {
		set terminal svg size (480 * nruns + 120),600 dynamic font "sans,10" noenhanced
	}
	set output outbase . "." . fmt
	set multiplot layout 1,nruns title ptitle noenhanced
	do for [r=1:nruns] {
		f = word(datafiles, r)
		set title value("ptitle" . r) noenhanced
		set label 1 (r == 1 ? caption : "") at screen 0.01, screen 0.02 left font ",8" noenhanced
		do for [i=1:nnotes] {
			set label (10 + i) (r == 1 ? value("note" . i) : "") at screen 0.01, \
				screen (0.02 + 0.03 * (nnotes - i + 1)) left font ",8" noenhanced
		}
		set bmargin 6 + 1.5 * nnotes
		# Only the last panel has the key (outside, right), the others keep their width.
		if (r == nruns) { set key outside right top } else { unset key }
		if (r == 1) { set ylabel ytitle noenhanced } else { unset ylabel }
		if (word(nodata, r) eq "1") {
			set label 2 "no data in this run" at graph 0.5, graph 0.5 center
		} else {
			unset label 2
		}
		if (kind eq "lines") {
			set xlabel xtitle noenhanced
			set grid xtics ytics
			if (logx) { set logscale x 2 } else { unset logscale x }
			set format x "% g"
			if (strlen(xticscmd) > 0) {
				eval xticscmd
			} else {
				if (logx) {
					set xtics ()
					do for [k=0:40:2] { set xtics add (sizelabel(2.0**k) 2.0**k) }
				} else {
					if (xmax - xmin <= 16) { set xtics 1 } else { set xtics autofreq }
				}
			}
			set xrange [xmin:xmax]
			set offsets graph 0.02, graph 0.02, 0, 0
			budget = (words(budgets) >= r) ? int(word(budgets, r)) : 0
			unset arrow 1
			unset label 3
			if (ideal && budget > 0) {
				set arrow 1 from first budget, graph 0 to first budget, graph 1 nohead dt 3 \
					lw 1.2 lc rgb "#555555" back
				set label 3 sprintf("usable CPUs: %d", budget) at first budget, graph 0.97 \
					right offset -0.5, 0 font ",8" textcolor rgb "#333333"
			}
			if (ideal) {
				plot for [i=1:nseries] f using 1:(column(2*i)) \
					with linespoints lw 2 pt pt(i) ps 1.0 lc rgb word(colors, i) \
					dt 1+(word(pyser, i) eq "1") title word(titles, i), \
				     idealf(x) with lines dt 2 lw 1.2 lc rgb "#555555" \
					title (budget > 0 ? sprintf("ideal (up to %d CPUs)", budget) \
						: "ideal (1 CPU per worker)")
			} else {
				plot for [i=1:nseries] f using 1:(column(2*i)) \
					with linespoints lw 2 pt pt(i) ps 1.0 lc rgb word(colors, i) \
					dt 1+(word(pyser, i) eq "1") title word(titles, i)
			}
		} else {
			unset xlabel
			set grid ytics
			set xtics nomirror noenhanced rotate by -30
			set xrange [-0.6:xmax - 0.4]
			set offsets 0, 0.6, 0, 0
			plot f using (column(0)):(ymin):xtic(1) with points ps 0 lc rgb "#ffffff" notitle, \
			     for [i=1:nseries] f using (xpos(i)):(column(2*i)):(bw) \
				with boxes lc rgb word(colors, i) fs solid (ispy(i) ? 0.35 : 0.9) border -1 \
				title word(titles, i), \
			     for [i=1:nseries] f \
				using (xpos(i)):(column(2*i)):(0):(column(2*i+1) - column(2*i)) \
				with vectors head size screen 0.006,90 lc rgb "#222222" notitle
		}
	}
	unset multiplot
	unset output
}
