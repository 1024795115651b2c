# report.tcl --
#
#	The Markdown report (doc/BENCHMARKS.md): the machine, how the run was
#	made, the targets, a table per handler, where the CPU goes, fairness,
#	growth, and the hand-written notes (bench/notes.md).

# bench::fmtOther --
#	The other processes' load during a run, flagged when it is enough to
#	disturb the figures.
proc bench::fmtOther {v} {
    set text [format %.2f $v]
    if {$v >= 0.25} {
	append text " **(disturbed)**"
    }
    return $text
}

# bench::thousands --
#	12345678 -> 12,345,678.
proc bench::thousands {n} {
    regsub -all {\d(?=(\d{3})+$)} $n {&,}
}

proc bench::fmtMs {v} {
    if {$v eq ""} {
	return "-"
    }
    return [format %.2f $v]
}

proc bench::table {handler} {
    variable opt
    variable results
    set lines {}
    lappend lines "| peer | workers | ab -c | requests/s | vs plain Tcl |\
	    p50 ms | p99 ms | failed | spread max/min (min-max) |\
	    server CPU s / 10k conn | ab CPU s / 10k conn | other load (cores) |"
    lappend lines "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\
	    --- | ---: | ---: | ---: |"
    set plain [rps plain $handler 1]
    foreach kind $opt(peers) {
	foreach r $results {
	    if {[dict get $r kind] ne $kind || [dict get $r handler] ne $handler} {
		continue
	    }
	    dict with r {
		if {$spread eq ""} {
		    set sp "-"
		} else {
		    set sp "$spread ($spreadMin-$spreadMax)"
		}
		if {$kind eq "plain"} {
		    set sp "- (1 process)"
		}
		set name [peerName $kind]
		lappend lines [format "| %s | %d | %d | %.0f | %s | %s | %s |\
			%d | %s | %.2f | %.2f | %s |" $name $workers \
			$concurrency $rps [fmtRatio [ratio $rps $plain]] \
			[fmtMs $p50] [fmtMs $p99] $failed $sp $cpu10k \
			$abCpu10k [fmtOther $otherCores]]
	    }
	}
    }
    return [join $lines \n]
}

# bench::peerName --
#	A peer's name as the tables show it.
proc bench::peerName {kind} {
    set names {reuseport "socketserver -reuseport" ss11 "socketservertcl 1.1"}
    expr {[dict exists $names $kind] ? [dict get $names $kind] : $kind}
}

proc bench::duration {secs} {
    if {$secs < 60} {
	return "$secs s"
    }
    return [format "%d min %02d s" [expr {$secs / 60}] [expr {$secs % 60}]]
}

proc bench::report {machine load0 load1 plots} {
    variable opt
    variable here
    set out $opt(out)
    set outDir [file dirname $out]
    file mkdir $outDir
    set md [concat [reportMachine $machine $load0 $load1] [reportMethod] \
	    [reportTargets] [reportTables $outDir $plots] [reportCpu] \
	    [reportSyscalls] [reportFairness] [reportGrowth]]
    set notes [file join $here notes.md]
    if {[file exists $notes]} {
	lappend md [string trim [readFile $notes]] ""
    }
    lappend md [saveState] ""
    set f [open $out w]
    puts -nonewline $f [join $md \n]
    close $f
    return $out
}

# bench::reportMachine --
#	The report's opening: when and how long it ran, the machine, and how
#	much other processes' load disturbed the figures.
proc bench::reportMachine {machine load0 load1} {
    variable opt
    variable results
    variable state
    variable started
    set md {}
    lappend md "# socketserver benchmarks" ""
    set kind [expr {$opt(full) ? "full" : "partial (quick or narrowed)"}]
    lappend md "Written by `bench/run` ([expr {$opt(quick) ? "BENCH_QUICK=1, " : ""}]$kind\
	    run) on [clock format $started -format {%Y-%m-%d %H:%M %Z}],\
	    in [duration [expr {[dict get $state finished] - $started}]].\
	    Every figure below comes from this one run; compare\
	    peers side by side, as ratios, not with another machine or day."
    lappend md ""
    lappend md "## Machine" ""
    dict with machine {
	lappend md "| | |" "| --- | --- |"
	lappend md "| CPU | $cpu, $cores cores |"
	lappend md "| memory | $memory |"
	lappend md "| system | $os, $kernel |"
	lappend md "| Tcl | $tcl, Tclx $tclx, socketserver $socketserver |"
	lappend md "| nginx | $nginx |"
	lappend md "| load generator | ab $ab (apache2-utils) |"
	lappend md "| load average (1, 5, 15 min) | at start: $load0; at end: $load1 (includes this run's own load) |"
    }
    set others [lmap r $results {dict get $r otherCores}]
    if {[llength $others]} {
	set disturbed [lmap r $results {
	    expr {[dict get $r otherCores] >= 0.25 ? $r : [continue]}
	}]
	lappend md "" "Other processes' load during the measured runs (all CPU\
		time /proc/stat counted, less the server's, ab's and the\
		driver's; it includes the loopback traffic's softirq work the\
		kernel charges to no process): mean [format %.2f\
		[expr {[tcl::mathop::+ {*}$others] / [llength $others]}]]\
		cores, largest [format %.2f [tcl::mathfunc::max {*}$others]]."
	set retried [expr {[dict exists $state retried]
		? [dict get $state retried] : 0}]
	if {$retried} {
	    lappend md "A run during which other processes took 0.25 cores\
		    or more was measured again (up to $opt(retries) more\
		    times, within the run's time budget); the least disturbed\
		    attempt is the one shown. $retried measurements were\
		    repeated."
	}
	if {[llength $disturbed]} {
	    lappend md "[llength $disturbed] of [llength $results] runs still\
		    had 0.25 cores or more of it and are marked\
		    **(disturbed)** in the tables: other processes took CPU\
		    from them, so their figures are low."
	} else {
	    lappend md "No run had 0.25 cores or more of it."
	}
    }
    if {[dict exists $state waited]} {
	lassign [dict get $state waited] secs quiet
	if {$secs > 0 || !$quiet} {
	    lappend md "" "Before measuring, the run waited [duration $secs]\
		    for the 1-minute load average to fall below 0.7\
		    (`--wait-quiet`)[expr {$quiet ? "." : ", and gave up."}]"
	}
    }
    if {[lindex $load0 0] >= 0.7} {
	lappend md "" "**The machine was loaded when this run started** (1-minute\
		load [lindex $load0 0]): other processes shared the 2 cores, so\
		absolute figures are low and noisy; ratios within the run\
		still compare peers under the same conditions."
    }
    lappend md ""
    return $md
}

# bench::reportMethod --
#	How the run was made: the commands, exactly as run, the nginx
#	configuration, the peers, the handlers and what each column means.
proc bench::reportMethod {} {
    variable opt
    variable extra
    variable state
    variable commands
    variable cpuLoops
    set md {}
    lappend md "## How it was run" ""
    lappend md "```sh"
    lappend md "make bench                 # the full run: writes this file and doc/bench-*.png"
    lappend md "BENCH_QUICK=1 make bench   # about a minute; report goes to \$TMPDIR/socketserver-bench/"
    lappend md "bench/run --workers 2,16 --handlers trivial --peers socketserver,nginx --duration 3"
    lappend md "```" ""
    if {[dict exists $state command]} {
	lappend md "This report: `[dict get $state command]`\
		([expr {$opt(full) ? "what `make bench` runs, with these\
		options" : "a narrowed run"}])." ""
    }
    lappend md "Each measured run starts the peer afresh on 127.0.0.1, warms it\
	    up with max(200, 4 x concurrency) requests, then runs ab for\
	    $opt(duration) s. ab opens a new TCP connection for every request\
	    (HTTP/1.0, no keep-alive): connection hand-off is what is measured.\
	    ab concurrency is max(32, 2 x workers) unless `--concurrency` is\
	    given, so every worker always has a connection waiting. ab runs on\
	    the same 2 cores as the server and takes about one of them."
    lappend md ""
    lappend md "Commands, exactly as run (RUNDIR is the run's temporary\
	    directory, PORT the port the server reported):" ""
    lappend md "```"
    foreach c $commands {
	lappend md $c
    }
    lappend md "```" ""
    if {[dict exists $extra nginxConf]} {
	lappend md "The nginx configuration. nginx cannot report a port it\
		picked, so PORT is found by binding a Tcl socket to 127.0.0.1\
		port 0 and closing it just before nginx starts; another process\
		could take the port in between, and then the run starts nginx\
		again on a new port." ""
	lappend md "```nginx" [string trim [dict get $extra nginxConf]] "```" ""
    }
    lappend md "### The peers" ""
    lappend md "All Tcl peers run the same handler (bench/server.tcl `serve`):\
	    read the request head with blocking `gets`, do the handler's work,\
	    write a 6-byte `hello` answer with its HTTP/1.0 head, close."
    lappend md ""
    lappend md "- **socketserver**: `::socketserver::socket server -myaddr\
	    127.0.0.1 0` in the parent, N workers forked with Tclx, each\
	    re-arming with `::socketserver::socket client` after every\
	    connection. The parent serves nothing."
    lappend md "- **plain**: Tcl's own `socket -server`, one process (run once\
	    per handler, shown as 1 worker)."
    lappend md "- **forkaccept**: `socket -server` in the parent, then N\
	    workers forked with Tclx; each accepts on the inherited listening\
	    socket (the parent closes its copy)."
    lappend md "- **socketserver -reuseport**: N workers forked with Tclx, each\
	    with its own `::socketserver::socket server -reuseport 1 -myaddr\
	    127.0.0.1 PORT` (the first binds port 0, the rest that port) and\
	    its own dispatcher, arming itself; the kernel spreads connections\
	    over the N listening sockets."
    lappend md "- **nginx**: Debian's nginx, `worker_processes N`, `return 200\
	    \"hello\\n\"` (the same body)."
    lappend md "- **floor**: the least a hand-off can cost (bench/floor.c,\
	    built by the run): one C process accepts and passes each\
	    connection with SCM_RIGHTS to N forked C workers in turn, then\
	    closes its copy; no readiness, no acknowledgement, no Tcl."
    lappend md "- **ss11**: socketservertcl 1.1 (FlightAware), when `--ss11\
	    LIBRARY` names its shared library, built from its public source\
	    outside this tree: `::socketserver::socket server PORT`, N workers\
	    forked with Tclx, each re-arming as the socketserver peer does."
    lappend md ""
    lappend md "Handlers: **trivial** answers at once; **blocking** runs a\
	    synchronous `after 5` first (ideal: 200 requests/s per worker);\
	    **cpu** first runs `for {set i 0} {\$i < $cpuLoops} {incr i} {}`,\
	    calibrated at the start of the run to take about 1 ms here;\
	    **fileevent** answers at once, but reads the request from\
	    readable fileevents on a non-blocking channel and re-arms only\
	    after answering, the socketservertcl paper's pattern."
    lappend md ""
    lappend md "Columns: **requests/s** and **failed** (failed + non-2xx +\
	    connection errors) from ab; **p50/p99** are ab's percentiles of\
	    the whole request time, connect included; **spread** is max/min of\
	    the connections each worker served during the measured run (each\
	    worker counts its connections and reports them when the driver\
	    asks, through a control pipe);\
	    **CPU s / 10k conn** is the server's CPU time (utime + stime from\
	    /proc/PID/stat of the server and all its workers, all threads)\
	    during the measured run, per 10,000 connections; **ab CPU** is the\
	    load generator's own, from the driver's cutime + cstime around\
	    it (server and ab share the 2 cores)."
    lappend md ""
    return $md
}

# bench::reportTargets --
#	The targets table.
proc bench::reportTargets {} {
    set md {}
    lappend md "## Targets" ""
    lappend md "| target | measured | |" "| --- | --- | --- |"
    foreach row [targets] {
	lassign $row t m v
	lappend md "| $t | $m | $v |"
    }
    lappend md ""
    return $md
}

# bench::reportTables --
#	One section per handler: its plot, when drawn, and its table.
proc bench::reportTables {outDir plots} {
    variable opt
    set md {}
    foreach handler $opt(handlers) {
	set title [dict get {
	    trivial "Trivial handler"
	    blocking "Blocking handler (`after 5`)"
	    cpu "CPU handler (~1 ms of Tcl)"
	    fileevent "Fileevent handler (reads from readable events, re-arms after answering)"
	} $handler]
	lappend md "## $title" ""
	set png [file join $outDir bench-$handler.png]
	if {$png in $plots} {
	    lappend md "!\[requests/s against workers, $handler handler\](bench-$handler.png)" ""
	}
	lappend md [table $handler] ""
    }
    return $md
}

# bench::reportCpu --
#	Where the CPU goes, by thread, for the trivial handler.
proc bench::reportCpu {} {
    variable opt
    variable results
    set md {}
    set rows {}
    foreach r $results {
	if {[dict get $r handler] in {trivial fileevent}} {
	    lappend rows $r
	}
    }
    if {[llength $rows]} {
	lappend md "## Where the CPU goes (trivial and fileevent handlers)" ""
	lappend md "Microseconds of CPU per connection during the measured\
		run, by thread (from /proc/PID/task/TID/schedstat). **parent**:\
		the process the peer started from; for socketserver that is\
		where the dispatcher thread runs (the parent's own Tcl thread\
		sits idle in `vwait`); for forkaccept and -reuseport it only\
		waits; for nginx it is the master. **main**: the main threads\
		of the processes that serve (Tcl, the handler, the\
		socketserver worker side). **other threads**: their other\
		threads: Tcl 8.6's notifier thread, which runs select() for\
		the event loop and wakes the main thread, and for -reuseport\
		also each worker's own dispatcher thread. **ab**: the load\
		generator's own CPU, on the same 2 cores." ""
	lappend md "| peer | handler | workers | requests/s | parent | main | other threads | server total | ab |"
	lappend md "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	foreach kind $opt(peers) {
	    foreach r $rows {
		if {[dict get $r kind] ne $kind} {
		    continue
		}
		dict with r {
		    lappend md [format "| %s | %s | %d | %.0f | %.1f | %.1f | %.1f |\
			    %.1f | %.1f |" [peerName $kind] $handler $workers \
			    $rps $usparent \
			    $usmain $usother [expr {$cpu10k * 100}] \
			    [expr {$abCpu10k * 100}]]
		}
	    }
	}
	lappend md ""
    }
    return $md
}

# bench::reportSyscalls --
#	System calls per connection, and the hand-off's overhead over plain
#	Tcl in calls and in CPU (when counted).
proc bench::reportSyscalls {} {
    variable opt
    variable extra
    set md {}
    if {![dict exists $extra syscalls]} {
	return $md
    }
    lappend md "## System calls per connection (2 workers)" ""
    lappend md "Every system call of every thread of the server and its\
	    workers, counted by `strace -f -c` attached after a warm-up,\
	    over [thousands $opt(syscallConns)] connections at `ab -c 4`,\
	    divided by the connections served. strace slows the server, so\
	    only counts are kept. **most frequent** shows calls per\
	    connection, with how many of them failed (mostly EAGAIN)." ""
    lappend md "| peer | handler | calls / conn | most frequent |"
    lappend md "| --- | --- | ---: | --- |"
    foreach r [dict get $extra syscalls] {
	set top [lmap c [dict get $r top] {
	    lassign $c name per errors
	    format "%s %.1f%s" $name $per [expr {$errors >= 0.05
		    ? [format " (%.1f failed)" $errors] : ""}]
	}]
	lappend md [format "| %s | %s | %.1f | %s |" \
		[peerName [dict get $r kind]] [dict get $r handler] \
		[dict get $r perConn] [join $top ", "]]
    }
    lappend md ""
    foreach {kind handler} {socketserver trivial socketserver fileevent
	    floor trivial} {
	set line [overheadLine $kind $handler]
	if {$line ne ""} {
	    lappend md "- $line"
	}
    }
    lappend md ""
    return $md
}

# bench::syscallsPerConn --
#	The counted calls per connection of kind (2 workers; plain: 1) with
#	handler, or "" when not counted.
proc bench::syscallsPerConn {kind handler} {
    variable extra
    if {[dict exists $extra syscalls]} {
	foreach r [dict get $extra syscalls] {
	    if {[dict get $r kind] eq $kind && [dict get $r handler] eq $handler} {
		return [dict get $r perConn]
	    }
	}
    }
    return ""
}

# bench::overheadLine --
#	One line: what kind (2 workers) costs per connection beyond plain Tcl,
#	in system calls and in server CPU, for handler; "" when not measured.
proc bench::overheadLine {kind handler} {
    set calls [syscallsPerConn $kind $handler]
    set plainCalls [syscallsPerConn plain $handler]
    set r [find $kind $handler 2]
    set p [find plain $handler 1]
    if {$calls eq "" || $plainCalls eq "" || $r eq "" || $p eq ""} {
	return ""
    }
    set us [expr {([dict get $r cpu10k] - [dict get $p cpu10k]) * 100}]
    return [format "Hand-off overhead, %s over plain Tcl, %s handler:\
	    %+.1f µs of server CPU and %+.1f system calls per connection\
	    (%.2fx plain's calls)." [peerName $kind] $handler $us \
	    [expr {$calls - $plainCalls}] [expr {$calls / $plainCalls}]]
}

# bench::reportFairness --
#	Connections per worker with every worker busy (when measured).
proc bench::reportFairness {} {
    variable opt
    variable extra
    set md {}
    if {[dict exists $extra fairness]} {
	lappend md "## Fairness" ""
	lappend md "socketserver, $opt(fairWorkers) workers, `ab -n\
		$opt(fairConns) -c 32` (all workers busy all the time):\
		connections per worker." ""
	lappend md "| handler | requests/s | per worker (min - max) | max/min | failed |"
	lappend md "| --- | ---: | --- | ---: | ---: |"
	dict for {h r} [dict get $extra fairness] {
	    lappend md [format "| %s | %.0f | %s - %s | %s | %d |" $h \
		    [dict get $r rps] [dict get $r spreadMin] \
		    [dict get $r spreadMax] [dict get $r spread] \
		    [dict get $r failed]]
	}
	lappend md ""
    }
    return $md
}

# bench::reportGrowth --
#	Memory and descriptors before and after a long run (when measured).
proc bench::reportGrowth {} {
    variable opt
    variable extra
    set md {}
    if {[dict exists $extra growth]} {
	set g [dict get $extra growth]
	lappend md "## Growth over [thousands $opt(growthConns)] connections" ""
	lappend md "socketserver, [dict get $g workers] workers, trivial\
		handler. Measured after a 10,000-connection warm-up and again\
		after `ab -n $opt(growthConns) -c 32`\
		([format %.0f [dict get $g ab rps]] requests/s,\
		[dict get $g ab failed] failed)." ""
	lappend md "| process | role | RSS before KiB | RSS after KiB | growth KiB | fds before | fds after |"
	lappend md "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"
	foreach row [dict get $g rows] {
	    lassign $row pid role r0 r1 f0 f1
	    if {$role eq ""} {
		lappend md "| $pid | gone | | | | | |"
		continue
	    }
	    lappend md "| $pid | $role | $r0 | $r1 | [expr {$r1 - $r0}] | $f0 | $f1 |"
	}
	lappend md ""
    }
    return $md
}
