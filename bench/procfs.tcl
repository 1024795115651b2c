# procfs.tcl --
#
#	What the benchmark reads from /proc: process trees, CPU time per
#	process and thread, memory and descriptors, and the machine itself
#	(CPU model, cores, memory, kernel, load average).

proc bench::readFile {path} {
    set f [open $path]
    set data [read $f]
    close $f
    return $data
}

# bench::statFields --
#	The fields of /proc/PID/stat after the command name, or {} if the
#	process is gone. Field 0 here is the state (stat field 3).
proc bench::statFields {pid} {
    if {[catch {readFile /proc/$pid/stat} stat]} {
	return {}
    }
    set close [string last ")" $stat]
    return [string range $stat [expr {$close + 2}] end]
}

proc bench::alive {pid} {
    set f [statFields $pid]
    return [expr {[llength $f] && [lindex $f 0] ni {Z X}}]
}

# bench::tree --
#	pid and all its living descendants.
proc bench::tree {pid} {
    set parent [dict create]
    foreach dir [glob -nocomplain -directory /proc {[0-9]*}] {
	set p [file tail $dir]
	set f [statFields $p]
	if {[llength $f] && [lindex $f 0] ni {Z X}} {
	    dict lappend parent [lindex $f 1] $p
	}
    }
    set result {}
    if {[alive $pid]} {
	set result [list $pid]
    }
    set todo [list $pid]
    while {[llength $todo]} {
	set todo [lassign $todo p]
	if {[dict exists $parent $p]} {
	    foreach c [dict get $parent $p] {
		lappend result $c
		lappend todo $c
	    }
	}
    }
    return $result
}

# bench::cpuNs --
#	CPU time of every thread of each process, in nanoseconds, as a dict
#	pid/tid -> ns: /proc/PID/task/TID/schedstat (the scheduler's exact
#	run time, user + system), or utime + stime from .../stat where the
#	kernel has no schedstat. Clock ticks alone would not do: each thread
#	rounds down to 10 ms, and 64 workers with two threads each lose a
#	second per snapshot. A thread that ends during a run takes its time
#	with it; the peers' threads live as long as their process.
proc bench::cpuNs {pids} {
    set d [dict create]
    set hz [clockTicks]
    foreach pid $pids {
	foreach dir [glob -nocomplain -directory /proc/$pid/task *] {
	    set tid [file tail $dir]
	    if {![catch {readFile $dir/schedstat} ss]
		    && [string is wide -strict [lindex $ss 0]]
		    && [lindex $ss 0] > 0} {
		dict set d $pid/$tid [lindex $ss 0]
		continue
	    }
	    if {[catch {readFile $dir/stat} stat]} {
		continue
	    }
	    set f [string range $stat [expr {[string last ")" $stat] + 2}] end]
	    # stat fields 14 and 15 (utime, stime) are 11 and 12 here.
	    dict set d $pid/$tid [expr {([lindex $f 11] + [lindex $f 12])
		    * 1000000000 / $hz}]
	}
    }
    return $d
}

# bench::systemTicks --
#	From /proc/stat: {busy steal}, the whole machine's CPU time in clock
#	ticks, busy being user + nice + system + irq + softirq.
proc bench::systemTicks {} {
    set f [open /proc/stat]
    set line [gets $f]
    close $f
    lassign $line - user nice system idle iowait irq softirq steal
    return [list [expr {$user + $nice + $system + $irq + $softirq}] $steal]
}

# bench::selfNs --
#	This driver's own CPU time, in nanoseconds.
proc bench::selfNs {} {
    set ns 0
    dict for {task v} [cpuNs [list [pid]]] {
	incr ns $v
    }
    return $ns
}

# bench::childTicks --
#	CPU ticks of this process's waited-for children (cutime + cstime):
#	around a synchronous exec of ab, that is ab's own CPU time. Servers
#	are reaped only when stopped, so they never count here.
proc bench::childTicks {} {
    set f [statFields [pid]]
    return [expr {[lindex $f 13] + [lindex $f 14]}]
}

proc bench::clockTicks {} {
    if {[catch {exec getconf CLK_TCK} hz] || ![string is integer -strict $hz]} {
	set hz 100
    }
    return $hz
}

# bench::memFds --
#	A dict pid -> {rssKiB fdCount} for each living pid.
proc bench::memFds {pids} {
    set d [dict create]
    foreach pid $pids {
	if {[catch {readFile /proc/$pid/status} status]} {
	    continue
	}
	set rss 0
	regexp -line {^VmRSS:\s+(\d+)} $status -> rss
	set fds [llength [glob -nocomplain -directory /proc/$pid/fd *]]
	dict set d $pid [list $rss $fds]
    }
    return $d
}

proc bench::machine {} {
    set d [dict create]
    set cpu unknown
    catch {
	regexp -line {^model name\s*:\s*(.*)$} [readFile /proc/cpuinfo] -> cpu
    }
    dict set d cpu $cpu
    dict set d cores [exec nproc]
    dict set d kernel [exec uname -sr]
    set os unknown
    catch {regexp -line {^PRETTY_NAME="(.*)"} [readFile /etc/os-release] -> os}
    dict set d os $os
    set mem unknown
    catch {
	regexp -line {^MemTotal:\s+(\d+)} [readFile /proc/meminfo] -> kib
	set mem "[expr {$kib / 1024 / 1024.0 > 0 ? round($kib / 1048576.0) : 0}] GiB"
    }
    dict set d memory $mem
    variable tclsh
    dict set d tcl [exec $tclsh << {puts [info patchlevel]}]
    dict set d tclx [package provide Tclx]
    # The library the peers load: the same TCLLIBPATH, the same tclsh.
    set ss ?
    catch {
	set ss [exec $tclsh << {
	    set v [package require socketserver 2]
	    puts "$v from [file dirname [lindex [info loaded] \
		    [lsearch -index 1 [info loaded] Socketserver] 0]]"
	}]
    }
    set top $::bench::top
    if {![catch {exec git -C $top rev-parse --short HEAD} head]} {
	append ss ", git $head"
	if {![catch {exec git -C $top status --porcelain -- generic unix} dirty]
		&& $dirty ne ""} {
	    append ss " with uncommitted changes in generic/ or unix/"
	}
    }
    dict set d socketserver $ss
    set nv ?
    catch {exec nginx -v 2>@1} nv
    regexp {nginx/(\S+)} $nv -> nv
    dict set d nginx $nv
    set av ?
    catch {exec ab -V} av
    regexp {Version (\S+)} $av -> av
    dict set d ab $av
    return $d
}

proc bench::loadavg {} {
    return [lrange [readFile /proc/loadavg] 0 2]
}
