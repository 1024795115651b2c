# preforkProcess.tcl --
#
#	Processes and signals for a pool: reaping spawned workers, killing,
#	the control socket's path, and the supervisor's signals.
#
#	Signals (with Tclx only: a spawn-mode pool without it takes no
#	signal, and its workers keep the default dispositions). Tcl 8.6
#	runs a Tclx trap inside the signal handler of whichever thread the
#	kernel picks, and Tcl_AsyncMark there takes Tcl's notifier mutex:
#	if that thread already holds it, the process deadlocks (Tcl ticket
#	f4f44174). So workers trap no signal at all (they ignore SIGINT
#	SIGTERM SIGHUP SIGTTIN SIGTTOU SIGUSR1, which reach them with their
#	process group, e.g. Ctrl-C or systemd), and the supervisor keeps those
#	signals blocked in its main thread and takes them every 100 ms by
#	unblocking them for an instant, from a timer, when the main thread
#	holds no Tcl lock. The dispatcher thread blocks every signal, and
#	Tcl's notifier thread, started at the first event loop wait,
#	inherits the main thread's mask: create the pool before the process
#	first enters the event loop and no other thread can take these
#	signals. Spawned workers inherit the blocked mask; they load Tclx to
#	ignore the six signals, as forked ones do. SIGTERM and SIGINT are
#	not left to the timer where ::socketserver::watchstop exists (Unix):
#	its thread waits for them, so that a stop acts even while this
#	interp is busy; the stop runs from the event loop, and if the
#	process is still alive signalStopMs + 1 s later, the thread ends it.

namespace eval ::socketserver::prefork {

# ProcessExited --
#	Spawn mode: whether a spawned worker whose channel is still open has
#	exited, so that a blocking close of the channel reaps it at once.
#	With /proc (Linux): the process is a zombie, or gone. Elsewhere:
#	its stdout has reached end of file (eof), which only its exit does.

proc ProcessExited {pid eof} {
    variable procfs
    if {!$procfs} {
	return $eof
    }
    if {[catch {
	set f [open /proc/$pid/stat]
	set stat [read $f]
	close $f
    }]} {
	return 1		;# Reaped by someone else: close won't wait.
    }
    set state [string index [string trimleft \
	    [string range $stat [string last ")" $stat]+1 end]] 0]
    expr {$state in {Z X x}}
}

# KillProcesses --
#	Spawn mode: SIGKILL (Unix) or TerminateProcess (Windows) without
#	Tclx. Processes already gone are ignored.

proc KillProcesses {pids} {
    if {![llength $pids]} {
	return
    }
    if {$::tcl_platform(platform) eq "windows"} {
	foreach pid $pids {
	    catch {exec taskkill /F /PID $pid}
	}
    } else {
	catch {exec kill -KILL {*}$pids}
    }
}

# TempControlPath --
#	A fresh path for the control socket of a spawn-mode pool, in the
#	temporary directory. Kept short on Unix, where a socket's path has
#	at most 107 bytes.

proc TempControlPath {} {
    global env tcl_platform
    if {$tcl_platform(platform) eq "windows"} {
	set dirs {}
	foreach var {TEMP TMP} {
	    if {[info exists env($var)]} {
		lappend dirs $env($var)
	    }
	}
	lappend dirs [pwd]
    } else {
	set dirs [expr {[info exists env(TMPDIR)] ? [list $env(TMPDIR)] : {}}]
	lappend dirs /tmp
    }
    foreach dir $dirs {
	set dir [file normalize $dir]
	if {[file isdirectory $dir] && [file writable $dir]
		&& ($tcl_platform(platform) eq "windows"
		|| [string length $dir] <= 80)} {
	    break
	}
    }
    while 1 {
	set path [file join $dir [format ssprefork-%d-%06x [pid] \
		[expr {int(rand() * 0x1000000)}]]]
	if {![file exists $path]} {
	    return $path
	}
    }
}

# RegisterSignals, UnregisterSignals, PollSignals, SupervisorSignal,
# OnSignal --
#	SIGTERM SIGINT SIGHUP SIGTTIN SIGTTOU SIGUSR1 for the pools that take
#	signals. While any such pool lives, the signals are trapped but kept
#	blocked in the main thread; PollSignals, a timer, unblocks them for
#	an instant so a pending one is delivered right there, in the main
#	thread, outside any Tcl lock (see the file's header). The trap only
#	schedules OnSignal, which asks each pool to act.

proc RegisterSignals {pool} {
    variable signalPools
    variable savedSignals
    variable supervisorSignals
    variable signalStopMs
    if {![llength $signalPools]} {
	set savedSignals [signal get $supervisorSignals]
	signal block $supervisorSignals
	signal -restart trap [TrappedSignals] \
		{::socketserver::prefork::SupervisorSignal %S}
	if {[llength [info commands ::socketserver::watchstop]]} {
	    # Taken by a thread, so that they act even while this
	    # interp is busy: see the file's header.
	    ::socketserver::watchstop [expr {$signalStopMs + 1000}] \
		    ::socketserver::prefork::OnSignal
	}
	PollSignals
    }
    lappend signalPools $pool
}

# TrappedSignals --
#	The signals the Tclx trap takes: all of the pool's, but SIGTERM and
#	SIGINT where ::socketserver::watchstop takes those.

proc TrappedSignals {} {
    variable supervisorSignals
    if {![llength [info commands ::socketserver::watchstop]]} {
	return $supervisorSignals
    }
    lmap sig $supervisorSignals {
	if {$sig in {SIGTERM SIGINT}} continue
	set sig
    }
}

proc UnregisterSignals {pool} {
    variable signalPools
    variable savedSignals
    variable supervisorSignals
    variable pollId
    set i [lsearch -exact $signalPools $pool]
    if {$i < 0} {
	return
    }
    set signalPools [lreplace $signalPools $i $i]
    if {![llength $signalPools]} {
	after cancel $pollId
	catch {::socketserver::watchstop off}
	catch {signal set $savedSignals}
	catch {signal unblock $supervisorSignals}
	set savedSignals {}
    }
}

# OtherThreadsTakeSignals --
#	Linux: 1 if a thread other than the main one has one of the pool's
#	signals unblocked (Tcl's notifier, when the event loop ran before
#	the pool was created), 0 otherwise or where it cannot tell.

proc OtherThreadsTakeSignals {} {
    # The Tclx trap's signals (the watchstop thread waits for the others,
    # unblocking them while it waits), by their numbers on Linux.
    set numbers {SIGHUP 1 SIGINT 2 SIGUSR1 10 SIGTERM 15 SIGTTIN 21 SIGTTOU 22}
    set mask 0
    foreach sig [TrappedSignals] {
	set mask [expr {$mask | (1 << ([dict get $numbers $sig] - 1))}]
    }
    foreach task [glob -nocomplain -directory /proc/self/task *] {
	if {[file tail $task] == [pid] || [catch {
	    set f [open $task/status]
	    set status [read $f]
	    close $f
	}]} {
	    continue
	}
	if {[regexp -line {^SigBlk:\s*([0-9a-fA-F]+)} $status - blocked]
		&& ([scan $blocked %llx] & $mask) != $mask} {
	    return 1
	}
    }
    return 0
}

proc PollSignals {} {
    variable pollId
    variable signalPollMs
    set trapped [TrappedSignals]
    signal unblock $trapped
    signal block $trapped
    set pollId [after $signalPollMs ::socketserver::prefork::PollSignals]
}

proc SupervisorSignal {sig} {
    after 0 [list ::socketserver::prefork::OnSignal $sig]
}

proc OnSignal {sig} {
    variable signalPools
    foreach pool $signalPools {
	catch {[info object namespace $pool]::my Signal $sig}
    }
}

}
