# peers.tcl --
#
#	The peers the benchmark compares: start each server (socketserver,
#	plain Tcl, forkaccept, -reuseport, nginx) on 127.0.0.1, find the
#	processes that serve, ask them for their connection counts, stop them.

# bench::freePort --
#	A port that was free a moment ago: bind port 0, read it, close. For
#	nginx, which cannot report the port it picked. Another process may
#	take it before nginx binds it; startNginx then tries again.
proc bench::freePort {} {
    set s [socket -server {apply {args {}}} -myaddr 127.0.0.1 0]
    set port [lindex [fconfigure $s -sockname] 2]
    close $s
    return $port
}

# bench::startTcl --
#	Starts a Tcl peer (bench/server.tcl) and waits for its READY line.
#	Returns a dict describing the server.
proc bench::startTcl {kind workers handler} {
    variable tclsh
    variable here
    variable rundir
    variable cpuLoops
    variable serverSeq
    set n [incr serverSeq]
    set err [file join $rundir server$n.err]
    set cmd [list $tclsh [file join $here server.tcl] $kind $workers \
	    $handler $rundir $cpuLoops]
    set shown "[file tail $tclsh] bench/server.tcl $kind WORKERS $handler\
	    RUNDIR $cpuLoops"
    if {$kind eq "ss11"} {
	# socketservertcl 1.1 binds a port it is given, on every address.
	variable opt
	lappend cmd [freePort] $opt(ss11)
	append shown " PORT SS11LIBRARY"
    }
    record $shown
    set chan [open |[list {*}$cmd 2> $err] r+]
    fconfigure $chan -buffering line
    set pid [pid $chan]
    set timer [after 60000 [list set ::bench::ready timeout]]
    fileevent $chan readable [list apply {{chan} {
	if {[gets $chan line] >= 0} {
	    set ::bench::ready $line
	} elseif {[eof $chan]} {
	    set ::bench::ready eof
	}
    }} $chan]
    vwait ::bench::ready
    after cancel $timer
    fileevent $chan readable {}
    set line $::bench::ready
    if {![regexp {^READY (\d+)$} $line -> port]} {
	catch {kill SIGKILL [tree $pid]}
	catch {close $chan}
	fail "$kind server ($workers workers, $handler) did not start:\
		$line\n[readFile $err]"
    }
    return [dict create kind $kind workers $workers handler $handler \
	    chan $chan pid $pid port $port err $err]
}

# bench::nginxConf --
#	The configuration nginx runs with: N workers, nothing logged per
#	request, the same body as the Tcl peers.
proc bench::nginxConf {dir workers port} {
    return [string map [list @DIR@ $dir @N@ $workers @PORT@ $port] {
worker_processes @N@;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    server_tokens off;
    default_type text/plain;
    client_body_temp_path @DIR@/body;
    proxy_temp_path @DIR@/proxy;
    fastcgi_temp_path @DIR@/fastcgi;
    uwsgi_temp_path @DIR@/uwsgi;
    scgi_temp_path @DIR@/scgi;
    server {
        listen 127.0.0.1:@PORT@ backlog=4096;
        location / {
            return 200 "hello\n";
        }
    }
}
}]
}

# bench::startNginx --
#	Starts nginx in the foreground with a generated configuration and
#	waits until it answers and all its workers run.
proc bench::startNginx {workers} {
    variable rundir
    variable serverSeq
    variable extra
    set nginx [auto_execok nginx]
    if {$nginx eq "" && [file executable /usr/sbin/nginx]} {
	set nginx /usr/sbin/nginx
    }
    if {$nginx eq ""} {
	fail "nginx not found (tools/setup installs it)"
    }
    for {set attempt 0} {$attempt < 5} {incr attempt} {
	set n [incr serverSeq]
	set dir [file join $rundir nginx$n]
	file mkdir $dir
	set port [freePort]
	set conf [file join $dir nginx.conf]
	set f [open $conf w]
	puts -nonewline $f [nginxConf $dir $workers $port]
	close $f
	dict set extra nginxConf [nginxConf RUNDIR/nginxN WORKERS PORT]
	set err [file join $dir stderr]
	record "$nginx -c RUNDIR/nginxN/nginx.conf -p RUNDIR/nginxN\
		-g 'daemon off;'"
	set chan [open |[list {*}$nginx -c $conf -p $dir -g "daemon off;" \
		</dev/null 2> $err] r]
	set pid [pid $chan]
	set deadline [expr {[clock milliseconds] + 20000}]
	set up 0
	while {[clock milliseconds] < $deadline && [alive $pid]} {
	    if {![catch {socket 127.0.0.1 $port} s]} {
		close $s
		if {[llength [tree $pid]] == $workers + 1} {
		    set up 1
		    break
		}
	    }
	    after 20
	}
	if {$up} {
	    return [dict create kind nginx workers $workers handler trivial \
		    chan $chan pid $pid port $port err $err]
	}
	catch {kill SIGKILL [tree $pid]}
	catch {close $chan}
	log "nginx did not start on port $port (taken since?); trying again"
    }
    fail "nginx would not start: [readFile $err]"
}

# bench::startFloor --
#	Starts the floor peer (bench/floor.c, compiled into the run
#	directory on first use) and waits for its READY line.
proc bench::startFloor {workers} {
    variable here
    variable rundir
    variable serverSeq
    set exe [file join $rundir floor]
    if {![file executable $exe]} {
	set cc [expr {[info exists ::env(CC)] && $::env(CC) ne "" ? $::env(CC) : "cc"}]
	record "$cc -O2 -o RUNDIR/floor bench/floor.c"
	if {[catch {exec $cc -O2 -o $exe [file join $here floor.c] 2>@1} msg]} {
	    fail "cannot build the floor peer: $msg"
	}
    }
    set err [file join $rundir server[incr serverSeq].err]
    record "RUNDIR/floor WORKERS"
    set chan [open |[list $exe $workers 2> $err] r]
    set pid [pid $chan]
    if {[gets $chan line] < 0 || ![regexp {^READY (\d+)$} $line -> port]} {
	catch {kill SIGKILL [tree $pid]}
	catch {close $chan}
	fail "the floor peer did not start: [readFile $err]"
    }
    # Its workers are forked before it listens: all run once it answers.
    return [dict create kind floor workers $workers handler trivial \
	    chan $chan pid $pid port $port err $err]
}

# bench::servingPids --
#	The processes that take connections: the workers (every descendant),
#	or the one process of the plain peer.
proc bench::servingPids {server} {
    set pids [tree [dict get $server pid]]
    if {[dict get $server kind] eq "plain"} {
	return [lrange $pids 0 0]
    }
    return [lrange $pids 1 end]
}

# bench::poke --
#	One HTTP/1.0 request of our own, answered and closed. A forkaccept
#	worker can sit blocked inside accept() (Tcl's listening socket is
#	blocking, and all of them wake for each connection); only a new
#	connection brings it back to its event loop to read its control pipe.
proc bench::poke {port} {
    if {[catch {
	set s [socket 127.0.0.1 $port]
	fconfigure $s -translation binary -blocking 1
	puts -nonewline $s "GET / HTTP/1.0\r\n\r\n"
	flush $s
	read $s
	close $s
    }]} {
	catch {close $s}
    }
}

# bench::counts --
#	Asks every serving process of a Tcl peer for its connection count
#	("count" on the server's stdin; each serving process writes
#	RUNDIR/count.PID). Returns a dict pid -> served. While some worker
#	has not answered after 200 ms, a few connections of our own poke the
#	server every 100 ms (see poke); each adds one connection to some
#	worker's count, a handful against the thousands of a run.
proc bench::counts {server} {
    variable rundir
    if {[native [dict get $server kind]]} {
	return {}
    }
    set pids [servingPids $server]
    foreach pid $pids {
	file delete [file join $rundir count.$pid]
    }
    puts [dict get $server chan] count
    flush [dict get $server chan]
    set result [dict create]
    set start [clock milliseconds]
    set nextPoke [expr {$start + 200}]
    set deadline [expr {$start + 10000}]
    set missing $pids
    while {[llength $missing] && [clock milliseconds] < $deadline} {
	set still {}
	foreach pid $missing {
	    set file [file join $rundir count.$pid]
	    if {[file exists $file]} {
		dict set result $pid [lindex [readFile $file] 0]
	    } else {
		lappend still $pid
	    }
	}
	set missing $still
	if {[llength $missing] && [clock milliseconds] >= $nextPoke} {
	    for {set i 0} {$i < 2 * [llength $missing] + 2} {incr i} {
		poke [dict get $server port]
	    }
	    set nextPoke [expr {[clock milliseconds] + 100}]
	} elseif {[llength $missing]} {
	    after 5
	}
    }
    foreach pid $missing {
	dict set result $pid 0
	log "worker $pid did not report its count"
    }
    return $result
}

# bench::stop --
#	Stops a server and every process under it: a Tcl peer exits at
#	end-of-file on its stdin and its workers follow (end-of-file on
#	their control pipes); nginx gets SIGTERM. Anything left after 3 s
#	(a forkaccept worker blocked in accept()) gets SIGTERM, then SIGKILL.
proc bench::stop {server} {
    set pid [dict get $server pid]
    set chan [dict get $server chan]
    set pids [tree $pid]
    if {[native [dict get $server kind]]} {
	catch {kill SIGTERM $pid}
    } else {
	catch {chan close $chan write}
    }
    # A forkaccept worker blocked in accept() never sees end-of-file.
    set grace [expr {[dict get $server kind] eq "forkaccept" ? 500 : 3000}]
    foreach {signal wait} [list SIGTERM $grace SIGKILL 2000 {} 2000] {
	set deadline [expr {[clock milliseconds] + $wait}]
	while {[clock milliseconds] < $deadline} {
	    set left [lmap p $pids {expr {[alive $p] ? $p : [continue]}}]
	    if {![llength $left]} {
		break
	    }
	    after 10
	}
	if {![llength $left] || $signal eq ""} {
	    break
	}
	if {$signal eq "SIGKILL" || [dict get $server kind] ne "forkaccept"} {
	    log "[dict get $server kind]: [llength $left] process(es) still\
		    running; $signal"
	}
	catch {kill $signal $left}
    }
    catch {close $chan}
    set err [dict get $server err]
    if {[file exists $err] && [file size $err] > 0} {
	set text [string trim [readFile $err]]
	if {$text ne ""} {
	    log "server stderr: [string range $text 0 400]"
	}
    }
}
