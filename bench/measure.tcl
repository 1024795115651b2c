# measure.tcl --
#
#	One measured run: start a peer, warm it up, run ab against it, and
#	collect throughput, latency, spread over workers and CPU per
#	connection; repeat a run that other processes disturbed.

proc bench::concurrencyFor {workers} {
    variable opt
    if {$opt(concurrency) ne "auto"} {
	return $opt(concurrency)
    }
    return [expr {max(32, 2 * $workers)}]
}

proc bench::start {kind workers handler} {
    switch -- $kind {
	nginx { return [startNginx $workers] }
	floor { return [startFloor $workers] }
    }
    return [startTcl $kind $workers $handler]
}

# bench::spread --
#	max/min of the per-process deltas between two count dicts; returns
#	{ratio min max} (ratio "inf" when some worker took none).
proc bench::spread {before after} {
    set deltas {}
    dict for {pid n} $after {
	set was [expr {[dict exists $before $pid] ? [dict get $before $pid] : 0}]
	lappend deltas [expr {$n - $was}]
    }
    if {![llength $deltas]} {
	return {{} {} {}}
    }
    set min [tcl::mathfunc::min {*}$deltas]
    set max [tcl::mathfunc::max {*}$deltas]
    if {$min <= 0} {
	return [list inf $min $max]
    }
    return [list [format %.2f [expr {double($max) / $min}]] $min $max]
}

# bench::measure --
#	Starts a peer, warms it up, then measures one ab run (how) with CPU
#	and per-worker counts taken just before and after. Returns a dict.
proc bench::measure {kind workers handler how {concurrency ""}} {
    variable rundir
    if {$concurrency eq ""} {
	set concurrency [concurrencyFor $workers]
    }
    set server [start $kind $workers $handler]
    set port [dict get $server port]
    # Warm up: compile the handler, touch every worker's first allocations.
    set warm [ab $port $concurrency [list -n [expr {max(200, 4 * $concurrency)}]]]
    set pids [tree [dict get $server pid]]
    set before [counts $server]
    set cpu0 [cpuNs $pids]
    set sys0 [systemTicks]
    set self0 [selfNs]
    set t0 [clock microseconds]
    set r [ab $port $concurrency $how]
    set elapsed [expr {([clock microseconds] - $t0) / 1e6}]
    set self1 [selfNs]
    set sys1 [systemTicks]
    set cpu1 [cpuNs $pids]
    set after [counts $server]
    set nprocs [llength [tree [dict get $server pid]]]
    stop $server

    # Where the CPU went: the parent process (for socketserver, where the
    # dispatcher thread runs), the serving processes' main threads (Tcl
    # and the handler), their other threads (Tcl's notifier thread).
    set ns 0
    set part [dict create parent 0 main 0 other 0]
    set root [dict get $server pid]
    set serving [expr {$kind eq "plain" ? [list $root] : [lrange $pids 1 end]}]
    dict for {task t} $cpu1 {
	if {![dict exists $cpu0 $task]} {
	    continue
	}
	set d [expr {$t - [dict get $cpu0 $task]}]
	incr ns $d
	lassign [split $task /] pid tid
	if {$pid ni $serving} {
	    dict incr part parent $d
	} elseif {$pid == $tid} {
	    dict incr part main $d
	} else {
	    dict incr part other $d
	}
    }
    set cpuSec [expr {$ns / 1e9}]
    # Everything else the machine ran meanwhile: all CPU time the kernel
    # counted, less the server's, ab's and this driver's. What is left is
    # other processes (and the part of the loopback traffic's softirq
    # work that the kernel does not charge to a process).
    set hz [clockTicks]
    set busy [expr {double([lindex $sys1 0] - [lindex $sys0 0]) / $hz}]
    set steal [expr {double([lindex $sys1 1] - [lindex $sys0 1]) / $hz}]
    set ours [expr {$cpuSec + double([dict get $r abTicks]) / $hz
	    + ($self1 - $self0) / 1e9}]
    dict set r busyCores [expr {$busy / $elapsed}]
    dict set r otherCores [expr {max(0.0, ($busy - $ours) / $elapsed)}]
    dict set r stealCores [expr {$steal / $elapsed}]
    set n [dict get $r complete]
    dict for {k d} $part {
	dict set r us$k [expr {$n > 0 ? $d / 1e3 / $n : 0}]
    }
    dict set r cpu10k [expr {$n > 0 ? $cpuSec * 10000.0 / $n : 0}]
    dict set r abCpu10k [expr {$n > 0 ? double([dict get $r abTicks])
	    / [clockTicks] * 10000.0 / $n : 0}]
    dict set r cpusec $cpuSec
    lassign [spread $before $after] ratio min max
    dict set r spread $ratio
    dict set r spreadMin $min
    dict set r spreadMax $max
    dict set r warmFailed [dict get $warm failed]
    dict set r kind $kind
    dict set r workers $workers
    dict set r handler $handler
    dict set r concurrency $concurrency
    dict set r procs $nprocs
    if {$nprocs != [expectedProcs $kind $workers]} {
	log "warning: $kind with $workers workers ended with $nprocs processes"
    }
    dict unset r output
    return $r
}

# bench::measureQuiet --
#	measure, again (up to opt(retries) times, within the run's time
#	budget) while other processes took 0.25 cores or more of the machine
#	during it. Returns the least disturbed attempt, with the number of
#	attempts in "attempts".
proc bench::measureQuiet {args} {
    variable opt
    variable started
    variable retried
    variable runSecs
    variable runCount
    variable remaining
    set t0 [clock milliseconds]
    set best [measure {*}$args]
    set attempts 1
    set r $best
    while {[dict get $best otherCores] >= 0.25 && $attempts <= $opt(retries)
	    && [affordRetry [expr {([clock milliseconds] - $t0) / 1000.0}] \
		$attempts]} {
	log [format "  (%s, %s workers, %s: other processes took %.2f cores;\
		measuring again)" [lindex $args 0] [lindex $args 1] \
		[lindex $args 2] [dict get $r otherCores]]
	set r [measure {*}$args]
	incr attempts
	incr retried
	if {[dict get $r otherCores] < [dict get $best otherCores]} {
	    set best $r
	}
    }
    set runSecs [expr {$runSecs + ([clock milliseconds] - $t0) / 1000.0}]
    incr runCount $attempts
    incr remaining -1
    dict set best attempts $attempts
    return $best
}

# bench::affordRetry --
#	Whether one more measurement still lets the whole run end within its
#	budget (9 min, 110 s with --quick): the time spent so far, plus the
#	runs still to come at the average length so far (secs and attempts:
#	the run being measured), plus this one.
proc bench::affordRetry {secs attempts} {
    variable opt
    variable started
    variable runSecs
    variable runCount
    variable remaining
    set avg [expr {($runSecs + $secs) / ($runCount + $attempts)}]
    set tail [expr {$opt(quick) ? 15 : 45}]	;# fairness, growth, report
    set need [expr {[clock seconds] - $started + ($remaining + 1) * $avg + $tail}]
    return [expr {$need < $opt(budget)}]
}

proc bench::expectedProcs {kind workers} {
    if {$kind eq "plain"} {
	return 1
    }
    return [expr {$workers + 1}]
}

proc bench::show {r} {
    dict with r {
	set line [format "%-12s %-8s %3d workers  c=%-3d %9.0f req/s  p50 %s\
		p99 %s ms  failed %d  spread %s  cpu %.2f s/10k  ab %.2f\
		others %.2f cores" \
		$kind $handler $workers $concurrency $rps $p50 $p99 $failed \
		[expr {$spread eq "" ? "-" : $spread}] $cpu10k $abCpu10k \
		$otherCores]
    }
    log $line
}
