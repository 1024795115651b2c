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

# bench::syscalls --
#	System calls per connection for every peer at 2 workers (plain Tcl:
#	its one process), with the trivial and fileevent handlers: strace
#	-c -f attached to every thread of the server and its workers after a
#	warm-up, for opt(syscallConns) connections at ab -c 4. strace slows
#	the server down, so only the counts are kept, not the times. Stores
#	a list of dicts {kind workers handler perConn top} in extra syscalls.
proc bench::syscalls {} {
    variable opt
    variable extra
    if {[auto_execok strace] eq ""} {
	log "strace not found (tools/setup --all installs it): system calls\
		not counted"
	return
    }
    set rows {}
    foreach handler {trivial fileevent} {
	foreach kind $opt(peers) {
	    if {[native $kind] && $handler ne "trivial"} {
		continue
	    }
	    set workers [expr {$kind eq "plain" ? 1 : 2}]
	    set r [countSyscalls $kind $workers $handler]
	    if {$r ne ""} {
		lappend rows $r
		log [format "syscalls: %-12s %-9s %5.1f per connection" \
			$kind $handler [dict get $r perConn]]
	    }
	}
    }
    dict set extra syscalls $rows
}

# bench::countSyscalls --
#	One strace-counted run (see syscalls). Returns its dict, or "" when
#	strace could not attach or ab failed.
proc bench::countSyscalls {kind workers handler} {
    variable opt
    variable rundir
    set server [start $kind $workers $handler]
    set port [dict get $server port]
    ab $port 4 {-n 200}
    set pids [tree [dict get $server pid]]
    set out [file join $rundir strace.txt]
    file delete $out
    set args [list -f -c -qq -o $out]
    foreach p $pids {
	lappend args -p $p
    }
    record "strace -f -c -qq -o strace.txt -p PID ... (every process of the\
	    server), then ab -r -c 4 -n $opt(syscallConns)"
    set strace [open |[list strace {*}$args 2>@1] r]
    set r ""
    if {[awaitTraced $pids]} {
	set run [ab $port 4 [list -n $opt(syscallConns)]]
	# strace writes its summary when it detaches, at SIGINT.
	catch {kill SIGINT [pid $strace]}
	catch {close $strace}
	set n [dict get $run complete]
	if {$n > 0 && [file exists $out]} {
	    set r [parseStrace [readFile $out] $n]
	    dict set r kind $kind
	    dict set r workers $workers
	    dict set r handler $handler
	}
    } else {
	log "strace could not attach to $kind; system calls not counted"
	catch {kill SIGKILL [pid $strace]}
	catch {close $strace}
    }
    stop $server
    return $r
}

# bench::awaitTraced --
#	Waits (up to 10 s) until every thread of every pid has a tracer.
#	Returns 1 when they all have.
proc bench::awaitTraced {pids} {
    set deadline [expr {[clock milliseconds] + 10000}]
    while {[clock milliseconds] < $deadline} {
	set untraced 0
	foreach pid $pids {
	    foreach task [glob -nocomplain /proc/$pid/task/*] {
		if {[catch {readFile $task/status} status]
			|| ![regexp -line {^TracerPid:\s*(\d+)} $status -> t]
			|| $t == 0} {
		    incr untraced
		}
	    }
	}
	if {!$untraced} {
	    return 1
	}
	after 20
    }
    return 0
}

# bench::parseStrace --
#	strace -c's summary table, per connection: a dict with perConn (all
#	calls) and top, the six most frequent calls as a list of {name
#	perConn errorsPerConn}.
proc bench::parseStrace {text n} {
    set calls {}
    set total 0
    foreach line [split $text \n] {
	# % time, seconds, usecs/call, calls, errors (may be empty), name
	if {![regexp {^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d*)\s*(\S+)\s*$} \
		$line -> count errors name]} {
	    continue
	}
	if {$name eq "total"} {
	    set total $count
	    continue
	}
	lappend calls [list $name $count [expr {$errors eq "" ? 0 : $errors}]]
    }
    set top {}
    foreach c [lrange [lsort -integer -decreasing -index 1 $calls] 0 5] {
	lassign $c name count errors
	lappend top [list $name [expr {double($count) / $n}] \
		[expr {double($errors) / $n}]]
    }
    return [dict create perConn [expr {double($total) / $n}] top $top]
}
