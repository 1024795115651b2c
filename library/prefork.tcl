# prefork.tcl --
#
#	::socketserver::prefork: a supervised pool of worker processes
#	sharing one socketserver port, as gunicorn, Unicorn and Node's cluster
#	module give their users. Workers are forked (Tclx: fork, wait, kill,
#	signal; loaded when the first such pool is created, not when the
#	package is) or, with -spawn (the default where there is no fork,
#	Windows, and on Tcl 9, whose notifier a forked child shares with its
#	parent: doc/design-notes.md), started as new tclsh processes that
#	join the server through its control socket; spawn mode needs no Tclx.
#
#	    set pool [::socketserver::prefork -port 8080 -workers 4 \
#		    -handler handle ?-init script? ?-maxrequests N? \
#		    ?-concurrency N? ?-timeout seconds? ?-onexit cmd? ?-log cmd? \
#		    ?-spawn bool? ?-tclsh path? ?-control path? ...]
#	    $pool workers ?n?
#	    $pool info
#	    $pool stop ?-graceful bool? ?-timeout seconds?
#	    $pool destroy
#
#	The pool's process (the supervisor) owns the server, or takes one
#	that already listens on -port in this process, and never serves a
#	connection itself. Each worker is a fork of it, or a fresh tclsh: it
#	starts with an empty event loop, runs -init once at global level,
#	then takes one connection at a time through ::socketserver::socket
#	client (-port in a fork, -connect CONTROLPATH when spawned).
#
#
#	The pool is in five files, one job each: this one (the command, its
#	options and logging), preforkProtocol.tcl (how supervisor and
#	worker talk), preforkProcess.tcl (processes and signals),
#	preforkSupervisor.tcl (the Pool class) and preforkWorker.tcl (the
#	worker side). pkgIndex.tcl sources them all.

namespace eval ::socketserver::prefork {
    variable seq 0		;# Pool command names: ::socketserver::poolN.
    variable pools {}		;# Live pool objects of this process.
    variable signalPools {}	;# Those that answer the process's signals.
    variable savedSignals {}	;# Dispositions before the first of them.
    variable pollId {}		;# PollSignals timer.
    variable supervisorSignals {SIGTERM SIGINT SIGHUP SIGTTIN SIGTTOU SIGUSR1}

    # Tunables, in milliseconds.
    variable tickMs 200		;# Reaping, -timeout and backoff checks.
    variable signalPollMs 100	;# How often blocked signals are taken.
    variable signalStopMs 30000	;# A SIGTERM/SIGINT stop's -timeout; the
				;# process ends this long after it anyway.
    variable graceMs 100	;# A retiring idle worker lingers this long.
    variable drainFallbackMs 1000 ;# "drain" while the server still listens.
    variable quickMs 1000	;# Dying younger than this, unasked: a failure.
    variable backoffMs 100	;# First delay after a failure; doubles...
    variable backoffMaxMs 10000	;# ... up to this.

    # Spawn mode: the directory of the package's pkgIndex.tcl (this
    # file is library/prefork.tcl under it), put first on a spawned
    # worker's auto_path so that it loads this very package; and whether
    # /proc tells a zombie (Linux; under wine, /proc/self/stat is the
    # host's, through drive Z:, hence the platform).
    variable libdir [file normalize [file dirname [file dirname \
	    [info script]]]]
    variable procfs [expr {$::tcl_platform(platform) eq "unix"
	    && [file readable /proc/self/stat]}]

    # In a worker process: set by the pool, readable by handlers.
    # stopping becomes 1 when the worker will take no more connections;
    # served counts the connections whose handler has returned.
    variable stopping 0
    variable served 0
    variable W			;# The worker's own state (array).

    # Spawn mode: the first command a spawned tclsh reads on its stdin
    # and evaluates; the line after it is the worker's configuration
    # (EncodeLine). It loads this package and becomes a worker, or says
    # why it could not on its stdout, a status line, and exits 4.
    variable bootstrap {apply {{} {
	if {[catch {
	    chan configure stdin -blocking 1 -translation lf
	    if {[gets stdin line] < 0} {
		exit 4
	    }
	    set config [subst -nocommands -novariables $line]
	    set path {}
	    foreach dir [concat [dict get $config path] $::auto_path] {
		if {$dir ni $path} {
		    lappend path $dir
		}
	    }
	    set ::auto_path $path
	    foreach dir [lreverse [dict get $config tm]] {
		catch {::tcl::tm::path add $dir}
	    }
	    set version [dict get $config version]
	    if {$version eq ""} {
		package require socketserver
	    } else {
		package require -exact socketserver $version
	    }
	    ::socketserver::prefork::SpawnedWorker $config
	} msg opts]} {
	    catch {set ::socketserver::prefork::W(raw) 1}  ;# Past StdoutGuard.
	    catch {
		chan configure stdout -translation lf -encoding utf-8
		puts stdout [list log error [string map \
			{\\ \\\\ \n \\n \r \\r} \
			"can't become a worker: [dict get $opts -errorinfo]"]]
		flush stdout
	    }
	}
	exit 4		;# Never back to tclsh, which would read stdin.
    }}}
}

# ::socketserver::prefork --
#	Creates a pool: checks the options, opens (or takes) the server and
#	starts the workers. Returns the pool's command name.

proc ::socketserver::prefork {args} {
    set windows [expr {$::tcl_platform(platform) eq "windows"}]
    # Tcl 9's epoll (kqueue) notifier does not survive a fork without
    # exec: the child shares, or loses, its parent's event set.
    set tcl9 [package vsatisfies [package provide Tcl] 9-]
    set opts [dict create -backlog "" -concurrency 0 -control "" \
	    -handler "" -init "" \
	    -log "" -maxrequests 0 -myaddr "" -onexit "" -port 0 -signals "" \
	    -spawn [expr {$windows || $tcl9}] -tclsh "" -timeout 0 -workers 2]
    set opts [prefork::ParseOptions $opts $args]
    dict with opts {
	prefork::CheckInt -port ${-port} 0
	prefork::CheckInt workers ${-workers} 1
	prefork::CheckInt maxrequests ${-maxrequests} 0
	prefork::CheckInt concurrency ${-concurrency} 0
	prefork::CheckNumber timeout ${-timeout}
	if {${-backlog} ne ""} {
	    prefork::CheckInt backlog ${-backlog} 1
	}
	foreach flag {-signals -spawn} {
	    if {[set $flag] ne "" && ![string is boolean -strict [set $flag]]} {
		return -code error -errorcode {TCL VALUE NUMBER} \
			"expected boolean value but got \"[set $flag]\""
	    }
	}
	foreach list {-handler -log -onexit} {
	    llength [set $list]	;# A malformed list fails here.
	}
	if {[llength ${-handler}] == 0} {
	    return -code error -errorcode {TCL ARGUMENT MISSING} \
		    "missing required option -handler"
	}
	set -spawn [expr {${-spawn} eq "" ? $windows || $tcl9
		: [string is true ${-spawn}]}]
	if {${-spawn}} {
	    if {${-tclsh} eq ""} {
		set -tclsh [info nameofexecutable]
	    }
	    if {[auto_execok ${-tclsh}] eq ""} {
		return -code error -errorcode \
			{POSIX ENOENT {no such file or directory}} \
			"couldn't execute \"${-tclsh}\": no such file or directory"
	    }
	    if {${-signals} eq ""} {
		# Signals need Tclx; spawn mode does not.
		set -signals [expr {!$windows
			&& ![catch {package require Tclx}]}]
	    }
	} elseif {$windows} {
	    return -code error -errorcode {SOCKETSERVER POOL NOFORK} \
		    "can't fork workers on this platform: use -spawn 1"
	} elseif {$tcl9} {
	    return -code error -errorcode {SOCKETSERVER POOL NOFORK} \
		    "can't fork workers under Tcl 9, whose notifier a forked\
		    child shares with its parent: use -spawn 1"
	} elseif {${-signals} eq ""} {
	    set -signals 1
	}
	set -signals [string is true ${-signals}]
	if {!${-spawn} || ${-signals}} {
	    package require Tclx
	}
    }
    variable prefork::seq
    while {[llength [info commands [set name \
	    ::socketserver::pool[incr seq]]]]} {}
    prefork::Pool create $name $opts
    return $name
}

namespace eval ::socketserver::prefork {

# ParseOptions --
#	Reads "-option value ..." against a dict of defaults; options may be
#	abbreviated, as with Tcl's own commands. Returns the merged dict.

proc ParseOptions {defaults argList} {
    set names [lsort [dict keys $defaults]]
    set n [llength $argList]
    for {set i 0} {$i < $n} {incr i 2} {
	set opt [tcl::prefix match -message option $names [lindex $argList $i]]
	if {$i + 1 >= $n} {
	    return -code error -errorcode {TCL ARGUMENT MISSING} \
		    "no argument given for $opt option"
	}
	dict set defaults $opt [lindex $argList $i+1]
    }
    return $defaults
}

# CheckInt, CheckNumber --
#	Option checks, worded as the core's own (`bad backlog "0": must be a
#	positive integer`). Return nothing or raise the error.

proc CheckInt {what value min} {
    if {![string is entier -strict $value]} {
	return -code error -errorcode {TCL VALUE INTEGER} \
		"expected integer but got \"$value\""
    }
    if {$what eq "-port"} {
	if {$value < 0 || $value > 65535} {
	    return -code error -errorcode {TCL VALUE PORT} \
		    "couldn't open socket: port number too\
		    [expr {$value < 0 ? "low" : "high"}]"
	}
    } elseif {$value < $min} {
	return -code error -errorcode [list TCL VALUE [string toupper $what]] \
		"bad $what \"$value\": must be a\
		[expr {$min ? "positive" : "non-negative"}] integer"
    }
}

proc CheckNumber {what value} {
    if {![string is double -strict $value]} {
	return -code error -errorcode {TCL VALUE NUMBER} \
		"expected floating-point number but got \"$value\""
    }
    if {$value < 0} {
	return -code error -errorcode [list TCL VALUE [string toupper $what]] \
		"bad $what \"$value\": must be a non-negative number"
    }
}

# DefaultLog --
#	The default -log: one timestamped line on stderr, with the process.

proc DefaultLog {level message} {
    set ms [clock milliseconds]
    set stamp [clock format [expr {$ms / 1000}] -format %Y-%m-%dT%H:%M:%S]
    catch {
	puts stderr [format "%s.%03d socketserver\[%d\] %s: %s" \
		$stamp [expr {$ms % 1000}] [pid] $level $message]
    }
}

# Log --
#	Calls a -log command prefix with level (info, warning or error) and
#	message; a failing or missing prefix falls back to DefaultLog.

proc Log {prefix level message} {
    if {[llength $prefix]} {
	if {![catch {uplevel #0 [list {*}$prefix $level $message]} err]} {
	    return
	}
	DefaultLog error "-log command failed: $err"
    }
    DefaultLog $level $message
}

}
