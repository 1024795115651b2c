# server.tcl --
#
#	The soak test's server, started by soak.tcl as
#
#	    tclsh server.tcl WORKERS
#
#	One socketserver on 127.0.0.1 and WORKERS worker processes forked
#	with Tclx, each answering a tiny HTTP/1.0 response, one request per
#	connection. This process is also the chaos monkey: it SIGKILLs
#	random workers and forks replacements, and knows, for each kill,
#	whether the victim held a client connection at that moment.
#
#	Prints "ready PORT PID" on stdout, then answers commands on stdin,
#	one per line, with one line each:
#	    chaos MIN MAX   start killing a random worker every MIN..MAX ms
#	    calm            stop killing; answers "kills K busy B"
#	    info            a dict: the server's `info`, kills, busykills,
#	                    and for this process and its workers the open
#	                    descriptors and resident memory (kB)
#	End-of-file on stdin ends everything: workers first, then this
#	process. Workers never take signals other than SIGSTOP/SIGKILL
#	(a threaded Tcl cannot take a trapped signal safely at any moment).

package require socketserver 2
package require Tclx

set nworkers [lindex $argv 0]
set response "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length:\
	3\r\nConnection: close\r\n\r\nok\n"

# serve --
#	A worker's handler: reads the request head, answers, closes, and
#	arms again. A client that goes away mid-request is its own loss.
proc serve {chan addr port} {
    catch {
	fconfigure $chan -translation binary -buffering full
	while {[gets $chan line] > 1} {}
	puts -nonewline $chan $::response
	close $chan
    }
    ::socketserver::socket client serve
}

set workers {}
set kills 0
set busyKills 0
set chaosTimer {}

# spawn --
#	Forks one worker. The child drops this process's stdin handler and
#	timers, and leaves when its parent has gone (checked once a second:
#	no signals).
proc spawn {} {
    flush stdout
    set pid [fork]
    if {$pid == 0} {
	fileevent stdin readable {}
	foreach id [after info] {
	    after cancel $id
	}
	set ::workers {}
	::socketserver::socket client serve
	proc orphaned {parent} {
	    if {[id process parent] != $parent} {
		exit 0
	    }
	    after 1000 [list orphaned $parent]
	}
	orphaned [id process parent]
	vwait forever
	exit 0
    }
    lappend ::workers $pid
    return $pid
}

# countFds, rssKb --
#	A process's open descriptors and resident memory.
proc countFds {pid} {
    llength [glob -nocomplain /proc/$pid/fd/*]
}

proc rssKb {pid} {
    if {[catch {open /proc/$pid/status} f]} {
	return 0
    }
    set text [read $f]
    close $f
    if {[regexp -line {^VmRSS:\s+(\d+)} $text -> kb]} {
	return $kb
    }
    return 0
}

# holdsConnection --
#	Whether process pid (stopped) holds a socket that is not an AF_UNIX
#	one: a worker's only such socket is the client connection it has
#	received and not yet closed.
proc holdsConnection {pid} {
    set unix {}
    set f [open /proc/net/unix]
    gets $f
    while {[gets $f line] >= 0} {
	dict set unix [lindex $line 6] 1
    }
    close $f
    foreach link [glob -nocomplain /proc/$pid/fd/*] {
	if {![catch {file readlink $link} target]
		&& [regexp {^socket:\[(\d+)\]$} $target -> inode]
		&& ![dict exists $unix $inode]} {
	    return 1
	}
    }
    return 0
}

# tick --
#	One act of chaos: freeze a random worker, note whether it holds a
#	connection, kill it, reap it, fork a replacement.
proc tick {min max} {
    set i [expr {int(rand() * [llength $::workers])}]
    set victim [lindex $::workers $i]
    kill SIGSTOP $victim
    set busy [holdsConnection $victim]
    kill SIGKILL $victim
    wait $victim
    set ::workers [lreplace $::workers $i $i]
    incr ::kills
    incr ::busyKills $busy
    spawn
    set ::chaosTimer [after [expr {$min + int(rand() * ($max - $min))}] \
	    [list tick $min $max]]
}

proc info_ {} {
    set d [::socketserver::socket info]
    dict set d kills $::kills
    dict set d busykills $::busyKills
    dict set d serverfds [countFds [pid]]
    dict set d serverrss [rssKb [pid]]
    set fds {}
    set rss {}
    foreach w $::workers {
	lappend fds [countFds $w]
	lappend rss [rssKb $w]
    }
    dict set d workerfds $fds
    dict set d workerrss $rss
    return $d
}

proc command {} {
    if {[gets stdin line] < 0} {
	if {[eof stdin]} {
	    quit
	}
	return
    }
    switch -- [lindex $line 0] {
	chaos {
	    after cancel $::chaosTimer
	    set ::chaosTimer [after [lindex $line 1] \
		    [list tick [lindex $line 1] [lindex $line 2]]]
	    puts ok
	}
	calm {
	    after cancel $::chaosTimer
	    puts "kills $::kills busy $::busyKills"
	}
	info {
	    puts [info_]
	}
	default {
	    puts "error: unknown command $line"
	}
    }
}

proc quit {} {
    foreach w $::workers {
	catch {kill SIGKILL $w}
	catch {wait $w}
    }
    exit 0
}

set port [::socketserver::socket server -myaddr 127.0.0.1 -backlog 4096 0]
for {set i 0} {$i < $nworkers} {incr i} {
    spawn
}
fconfigure stdout -buffering line
fileevent stdin readable command
puts "ready $port [pid]"
vwait forever
