# plot.tcl --
#
#	The report's plots, drawn with gnuplot when it is installed.

# bench::plot --
#	One PNG per handler: requests/s against workers (log2 axis), a line
#	per peer; the single-process plain peer as a flat reference line.
proc bench::plot {outDir} {
    variable opt
    variable rundir
    variable results
    set gnuplot [auto_execok gnuplot]
    if {$gnuplot eq ""} {
	log "gnuplot not found: no plots"
	return {}
    }
    set made {}
    set titles {
	socketserver "socketserver (dispatcher, N forked workers)"
	reuseport "socketserver -reuseport 1 (a listener per worker)"
	forkaccept "Tclx fork after socket -server (shared accept)"
	plain "plain Tcl socket -server (1 process)"
	nginx "nginx (C reference)"
	floor "C floor: accept, SCM_RIGHTS, close"
	ss11 "socketservertcl 1.1"
    }
    set styles {
	socketserver {lc rgb "#d62728" lw 2.5 pt 7}
	reuseport {lc rgb "#ff7f0e" lw 1.5 pt 5}
	forkaccept {lc rgb "#2ca02c" lw 1.5 pt 9}
	plain {lc rgb "#7f7f7f" lw 1.5 dt 2}
	nginx {lc rgb "#1f77b4" lw 1.5 pt 13}
	floor {lc rgb "#000000" lw 1.5 pt 1}
	ss11 {lc rgb "#9467bd" lw 1.5 pt 11}
    }
    foreach handler $opt(handlers) {
	set plots {}
	set xs [lsort -integer -unique $opt(workers)]
	foreach kind $opt(peers) {
	    set data [file join $rundir plot-$handler-$kind.dat]
	    set f [open $data w]
	    set any 0
	    if {$kind eq "plain"} {
		set v [rps plain $handler 1]
		if {$v ne ""} {
		    puts $f "[lindex $xs 0] $v"
		    puts $f "[lindex $xs end] $v"
		    set any 1
		}
	    } else {
		foreach w $xs {
		    set v [rps $kind $handler $w]
		    if {$v ne ""} {
			puts $f "$w $v"
			set any 1
		    }
		}
	    }
	    close $f
	    if {$any} {
		set with [expr {$kind eq "plain" ? "lines" : "linespoints"}]
		lappend plots "'$data' using 1:2 with $with\
			[dict get $styles $kind] title \"[dict get $titles $kind]\""
	    }
	}
	if {![llength $plots]} {
	    continue
	}
	set png [file join $outDir bench-$handler.png]
	set what [dict get {
	    trivial "trivial handler"
	    blocking "blocking handler (after 5 per request)"
	    cpu "CPU handler (~1 ms of Tcl per request)"
	    fileevent "fileevent handler (reads from readable events)"
	} $handler]
	set script [file join $rundir plot-$handler.gp]
	set f [open $script w]
	puts $f "set terminal pngcairo size 900,560 font 'sans,11'"
	puts $f "set output '$png'"
	puts $f "set title \"Requests per second against workers: $what\""
	puts $f "set xlabel 'workers (processes)'"
	puts $f "set ylabel 'requests/s (new TCP connection each)'"
	puts $f "set logscale x 2"
	puts $f "set xtics ([join [lmap x $xs {format {"%d" %d} $x $x}] ", "])"
	puts $f "set xrange \[[expr {[lindex $xs 0] / 1.3}]:[expr {[lindex $xs end] * 1.3}]\]"
	if {$handler eq "blocking"} {
	    # Requests/s grow with workers here: a log scale shows them all.
	    puts $f "set logscale y 10"
	    puts $f "set yrange \[100:*\]"
	} else {
	    puts $f "set yrange \[0:*\]"
	}
	puts $f "set grid ytics"
	puts $f "set key outside bottom center horizontal maxrows 3"
	if {$handler eq "blocking"} {
	    set ideal [file join $rundir ideal.dat]
	    set g [open $ideal w]
	    foreach w $xs {
		puts $g "$w [expr {$w * 200}]"
	    }
	    close $g
	    lappend plots "'$ideal' using 1:2 with lines lc rgb '#555555'\
		    lw 1 dt 3 title 'ideal: workers x 200/s'"
	}
	puts $f "plot [join $plots {, }]"
	close $f
	if {[catch {exec $gnuplot $script 2>@1} msg]} {
	    log "gnuplot failed: $msg"
	} else {
	    lappend made $png
	}
    }
    return $made
}
