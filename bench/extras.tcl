# extras.tcl --
#
#	The measurements beside the main table: the CPU handler's loop,
#	calibrated once per run, fairness over workers, and memory and
#	descriptor growth over a long run.

# bench::calibrate --
#	The iteration count of `for {set i 0} {$i < N} {incr i} {}` (the cpu
#	handler's work, bytecompiled in a proc) that takes about 1 ms here:
#	the best of several timings, so another process's burst does not
#	shrink it. Every Tcl peer then runs the same count.
proc bench::calibrate {} {
    proc ::bench::loop1000 {} {
	for {set i 0} {$i < 1000} {incr i} {}
    }
    loop1000
    set best Inf
    for {set k 0} {$k < 15} {incr k} {
	set us [lindex [time loop1000 100] 0]
	set best [expr {min($best, $us)}]
    }
    return [expr {max(100, int(1000.0 / $best * 1000 / 100) * 100)}]
}

proc bench::fairness {} {
    variable opt
    variable extra
    foreach handler {trivial blocking cpu} {
	set r [measureQuiet socketserver $opt(fairWorkers) $handler \
		[list -n $opt(fairConns)] 32]
	log "fairness ($handler, $opt(fairWorkers) workers,\
		$opt(fairConns) connections): max/min [dict get $r spread]\
		([dict get $r spreadMax]/[dict get $r spreadMin])"
	dict set extra fairness $handler $r
    }
}

# bench::growth --
#	socketserver, 4 workers, trivial handler: RSS and descriptors of the
#	server and every worker after a warm-up, then after growthConns more
#	connections.
proc bench::growth {} {
    variable opt
    variable extra
    set workers 4
    set c 32
    set server [start socketserver $workers trivial]
    set port [dict get $server port]
    set warm [ab $port $c [list -n 10000]]
    set pids [tree [dict get $server pid]]
    set m0 [memFds $pids]
    log "growth: $opt(growthConns) connections..."
    set r [ab $port $c [list -n $opt(growthConns)]]
    dict set r warmFailed [dict get $warm failed]
    # ab has its last answer once the worker closed; the dispatcher drops
    # its copy when the ACK arrives, which may be a moment later. A leak
    # stays; give the rest up to 2 s to settle.
    set deadline [expr {[clock milliseconds] + 2000}]
    while 1 {
	set m1 [memFds $pids]
	set same [expr {[llength [dict keys $m1]] == [llength $pids]}]
	dict for {pid v} $m1 {
	    if {![dict exists $m0 $pid]
		    || [lindex $v 1] != [lindex [dict get $m0 $pid] 1]} {
		set same 0
	    }
	}
	if {$same || [clock milliseconds] > $deadline} {
	    break
	}
	after 50
    }
    stop $server
    set rows {}
    set maxRss 0
    set fdChanged 0
    foreach pid $pids {
	if {![dict exists $m0 $pid] || ![dict exists $m1 $pid]} {
	    lappend rows [list $pid {} {} {} {} gone]
	    set fdChanged 1
	    continue
	}
	lassign [dict get $m0 $pid] rss0 fd0
	lassign [dict get $m1 $pid] rss1 fd1
	set role [expr {$pid == [lindex $pids 0] ? "server" : "worker"}]
	lappend rows [list $pid $role $rss0 $rss1 $fd0 $fd1]
	set maxRss [expr {max($maxRss, $rss1 - $rss0)}]
	if {$fd0 != $fd1} {
	    set fdChanged 1
	}
    }
    dict set extra growth [dict create rows $rows maxRssKiB $maxRss \
	    fdChanged $fdChanged ab $r workers $workers]
    log "growth: largest RSS growth $maxRss KiB, descriptors\
	    [expr {$fdChanged ? "changed" : "unchanged"}],\
	    failed [dict get $r failed]"
}
