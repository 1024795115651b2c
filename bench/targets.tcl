# targets.tcl --
#
#	The targets doc/BENCHMARKS.md checks: ratios between peers measured
#	in the same run, each with its verdict.

proc bench::find {kind handler workers} {
    variable results
    foreach r $results {
	if {[dict get $r kind] eq $kind && [dict get $r handler] eq $handler
		&& [dict get $r workers] == $workers} {
	    return $r
	}
    }
    return {}
}

proc bench::rps {kind handler workers} {
    set r [find $kind $handler $workers]
    if {$r eq ""} {
	return {}
    }
    return [dict get $r rps]
}

# bench::cpuPerConn --
#	Server CPU seconds per 10,000 connections of one measured run, or ""
#	when it was not measured.
proc bench::cpuPerConn {kind handler workers} {
    set r [find $kind $handler $workers]
    if {$r eq ""} {
	return {}
    }
    return [dict get $r cpu10k]
}

proc bench::ratio {a b} {
    if {$a eq "" || $b eq "" || $b == 0} {
	return {}
    }
    return [expr {double($a) / $b}]
}

proc bench::fmtRatio {x} {
    if {$x eq ""} {
	return "n/a"
    }
    return [format %.2fx $x]
}

proc bench::verdict {ok} {
    if {$ok eq ""} {
		return "not measured"
    }
    return [expr {$ok ? "**met**" : "**missed**"}]
}

# bench::targets --
#	The issue's targets, each as {text measured verdict}.
proc bench::targets {} {
    variable extra
    variable results
    set rows {}

    set two [rps socketserver trivial 2]
    set parts {}
    set ok ""
    foreach w {16 64} {
	set x [ratio [rps socketserver trivial $w] $two]
	if {$x ne ""} {
	    lappend parts "$w workers [fmtRatio $x]"
	    set ok [expr {($ok eq "" || $ok) && $x >= 0.9}]
	}
    }
    lappend rows [list "Adding workers costs nothing: trivial handler, 16\
	    and 64 workers >= 0.9x 2 workers" \
	    [expr {[llength $parts] ? [join $parts ", "] : "n/a"}] \
	    [verdict $ok]]

    set b [rps socketserver blocking 16]
    set ok [expr {$b eq "" ? "" : $b >= 0.95 * 3200}]
    lappend rows [list "Blocking handler, 16 workers >= 95% of 3,200 req/s" \
	    [expr {$b eq "" ? "n/a" : [format "%.0f req/s = %.1f%%" $b \
	    [expr {100.0 * $b / 3200}]]}] [verdict $ok]]

    set ok ""
    set text n/a
    if {[dict exists $extra fairness trivial]} {
	set parts {}
	set ok 1
	foreach h {blocking cpu trivial} {
	    set f [dict get $extra fairness $h]
	    set s [dict get $f spread]
	    lappend parts "$h handler $s ([dict get $f spreadMax] /\
		    [dict get $f spreadMin])"
	    if {$h ne "trivial"} {
		set ok [expr {$ok && $s ne "inf" && $s <= 1.3}]
	    }
	}
	set text "[join $parts ", "] (judged on the blocking and cpu\
		handlers, see Fairness)"
    }
    lappend rows [list "Fairness: 10,000 connections to 8 busy workers,\
	    max/min <= 1.3" $text [verdict $ok]]

    set x [ratio $two [rps plain trivial 1]]
    set n [ratio $two [rps nginx trivial 2]]
    lappend rows [list "Trivial handler, 2 workers >= 1.0x plain Tcl\
	    `socket -server`; ratio to nginx (2 workers) reported" \
	    "[fmtRatio $x] of plain; [fmtRatio $n] of nginx" \
	    [verdict [expr {$x eq "" ? "" : $x >= 1.0}]]]

    set calls [ratio [syscallsPerConn socketserver trivial] \
	    [syscallsPerConn plain trivial]]
    lappend rows [list "System calls per connection, trivial handler, 2\
	    workers <= 1.5x plain Tcl's" [fmtRatio $calls] \
	    [verdict [expr {$calls eq "" ? "" : $calls <= 1.5}]]]

    set cpu [ratio [cpuPerConn socketserver trivial 2] \
	    [cpuPerConn plain trivial 1]]
    lappend rows [list "Server CPU per connection, trivial handler, 2\
	    workers <= 1.6x plain Tcl's" [fmtRatio $cpu] \
	    [verdict [expr {$cpu eq "" ? "" : $cpu <= 1.6}]]]

    set parts {}
    set ok ""
    foreach {w want} {2 0.8 16 1.0 64 1.0} {
	set x [ratio [rps socketserver trivial $w] [rps forkaccept trivial $w]]
	if {$x ne ""} {
	    lappend parts "$w workers [fmtRatio $x]"
	    set ok [expr {($ok eq "" || $ok) && $x >= $want}]
	}
    }
    lappend rows [list "Trivial handler against forkaccept: >= 0.8x at 2\
	    workers, >= 1.0x at 16 and 64" \
	    [expr {[llength $parts] ? [join $parts ", "] : "n/a"}] \
	    [verdict $ok]]

    set parts {}
    set ok ""
    foreach handler {trivial fileevent} {
	foreach w [lsort -integer -unique [lmap r $results {
		dict get $r workers}]] {
	    set x [ratio [rps socketserver $handler $w] [rps ss11 $handler $w]]
	    if {$x ne ""} {
		lappend parts "$handler $w workers [fmtRatio $x]"
		set ok [expr {($ok eq "" || $ok) && $x >= 1.0}]
	    }
	}
    }
    lappend rows [list "Against socketservertcl 1.1 (with --ss11): >= 1.0x at\
	    every worker count" \
	    [expr {[llength $parts] ? [join $parts ", "] : "n/a"}] \
	    [verdict $ok]]

    if {[dict exists $extra growth]} {
	set g [dict get $extra growth]
	set text [format "largest RSS growth %.2f MB; descriptors %s" \
		[expr {[dict get $g maxRssKiB] / 1024.0}] \
		[expr {[dict get $g fdChanged] ? "changed" : "unchanged"}]]
	set ok [expr {[dict get $g maxRssKiB] < 2048 && ![dict get $g fdChanged]}]
    } else {
	set text "not run (full run only)"
	set ok ""
    }
    lappend rows [list "No growth over 200,000 connections: RSS < 2 MB,\
	    descriptors unchanged" $text [verdict $ok]]

    set failed 0
    set runs 0
    foreach r [allRuns] {
	incr runs
	incr failed [dict get $r failed]
	if {[dict exists $r warmFailed]} {
	    incr failed [dict get $r warmFailed]
	}
    }
    lappend rows [list "Zero failed requests in every run" \
	    "$failed failed over $runs runs (warm-ups included)" \
	    [verdict [expr {$failed == 0}]]]
    return $rows
}

# bench::allRuns --
#	Every ab measurement: the table's runs, fairness and growth.
proc bench::allRuns {} {
    variable results
    variable extra
    set all $results
    if {[dict exists $extra fairness]} {
	dict for {h r} [dict get $extra fairness] {
	    lappend all $r
	}
    }
    if {[dict exists $extra growth]} {
	lappend all [dict get $extra growth ab]
    }
    return $all
}
