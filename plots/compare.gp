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
# group count for bars) so that a run without data draws an empty panel, marked by nodata.
# Writes outbase.png (pngcairo) and outbase.svg.

if (!exists("logx")) logx = 0
if (!exists("logy")) logy = 1
if (!exists("caption")) caption = ""
if (!exists("ptitle")) ptitle = ""
if (!exists("xtitle")) xtitle = ""
if (!exists("ytitle")) ytitle = ""
if (!exists("pyser")) pyser = ""
ispy(i) = (word(pyser, i) eq "1")
nruns = words(datafiles)

set datafile separator "\t"
set datafile missing "NaN"
set border 3
set xtics nomirror
set ytics nomirror
set key top left noenhanced font ",8"
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
		set bmargin 6
		if (r == 1) { set ylabel ytitle noenhanced } else { unset ylabel }
		if (word(nodata, r) eq "1") {
			set label 2 "no data in this run" at graph 0.5, graph 0.5 center
		} else {
			unset label 2
		}
		if (kind eq "lines") {
			set xlabel xtitle noenhanced
			set grid xtics ytics
			if (logx) { set logscale x 2; set format x "%.0b%B" }
			if (!logx) { unset logscale x; set format x "% g" }
			set xrange [xmin:xmax]
			set offsets graph 0.02, graph 0.02, 0, 0
			plot for [i=1:nseries] f using 1:(column(2*i)) \
				with linespoints lw 2 pt 7 ps 0.8 lc rgb word(colors, i) \
				dt 1+(word(pyser, i) eq "1") title word(titles, i)
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
