# bench.tcl --
#
#	The benchmark driver, run by bench/run (which see for the options).
#	Starts each peer server on 127.0.0.1, drives it with ab (apache2-utils,
#	one new TCP connection per request), measures throughput, latency,
#	failures, the spread of connections over workers and the server's CPU
#	time, and writes a Markdown report with gnuplot plots.
#
#	Everything this process starts stays in its process group, which
#	bench/run kills on exit; each server also exits on its own when this
#	process goes away (end-of-file on its stdin).

package require Tcl 8.6
package require Tclx

namespace eval bench {
    variable here [file dirname [file normalize [info script]]]
    variable top [file dirname $here]
    variable tclsh [expr {[info exists ::env(TCLSH)] && $::env(TCLSH) ne ""
	    ? $::env(TCLSH) : [info nameofexecutable]}]

    variable opt
    array set opt {
	workers		{1 2 4 16 64}
	handlers	{trivial blocking cpu fileevent}
	peers		{socketserver plain forkaccept reuseport nginx floor}
	duration	5
	concurrency	auto
	quick		0
	out		""
	render		""
	retries		2
	budget		0
	waitQuiet	0
	growth		1
	growthConns	200000
	fairness	1
	fairConns	10000
	fairWorkers	8
	syscalls	1
	syscallConns	5000
	ss11		""
    }
    variable allPeers {socketserver plain forkaccept reuseport nginx floor ss11}
    variable allHandlers {trivial blocking cpu fileevent}
    variable results {}		;# list of dicts, one per run
    variable extra {}		;# dict: fairness, growth results
    variable rundir ""
    variable cpuLoops 0
    variable serverSeq 0
    variable commands {}	;# distinct command lines, in order
    variable started [clock seconds]
    variable state {}		;# machine, load averages, end time
    variable retried 0		;# measurements repeated for other load
    variable runSecs 0.0	;# time spent measuring so far
    variable runCount 0		;# measurements so far
    variable remaining 0	;# planned runs not yet measured
}

proc bench::usage {} {
    puts {usage: bench/run ?option ...?

  --workers LIST      worker counts, comma-separated     (default 1,2,4,16,64)
  --handlers LIST     trivial,blocking,cpu,fileevent     (default all four)
  --peers LIST        socketserver,plain,forkaccept,reuseport,nginx,floor,
                      ss11          (default all but ss11; --ss11 adds it)
  --ss11 LIBRARY      also measure socketservertcl 1.1, loaded from this
                      shared library (built from its public source,
                      outside this tree)
  --duration SECONDS  length of each measured run         (default 5)
  --concurrency N     ab -c for every run   (default max(32, 2 x workers))
  --quick             a short run (same as BENCH_QUICK=1): workers 2,16,64,
                      1 s per run, no 200,000-connection growth run
  --retries N         measure a run again, up to N times, when other
                      processes took 0.25 cores or more during it; the
                      least disturbed attempt counts (default 2; only
                      while the whole run still fits in 9 min, 110 s with
                      --quick)
  --wait-quiet MIN    before measuring, wait (up to MIN minutes) until the
                      1-minute load average is below 0.7
  --no-growth         skip the 200,000-connection RSS / fd growth run
  --no-fairness       skip the 10,000-connection fairness run
  --no-syscalls       skip counting system calls per connection (strace)
  --out FILE          where the report goes. Default: doc/BENCHMARKS.md for
                      a full run; for --quick or any narrowed run,
                      $TMPDIR/socketserver-bench/BENCHMARKS.md
  --render FILE       measure nothing: write the report (and plots) again
                      from the data kept at the end of FILE, an earlier
                      report, with the current bench/notes.md; to FILE
                      unless --out says otherwise
  --help              this text

The plots are written next to the report as bench-*.png.}
}

# bench::chooseFrom --
#	Splits a comma-separated option value and checks each element is one
#	of allowed; fails naming the first that is not.
proc bench::chooseFrom {what value allowed} {
    set chosen [split $value ,]
    foreach item $chosen {
	if {$item ni $allowed} {
	    fail "bad $what \"$item\": must be [join $allowed ", "]"
	}
    }
    return $chosen
}

proc bench::parseArgs {argv} {
    variable opt
    variable allPeers
    variable allHandlers
    set narrowed 0
    if {[info exists ::env(BENCH_QUICK)] && $::env(BENCH_QUICK) ni {"" 0}} {
	set opt(quick) 1
    }
    while {[llength $argv]} {
	set argv [lassign $argv arg]
	if {$arg in {--quick --no-growth --no-fairness --no-syscalls --help -h}} {
	    switch -- $arg {
		--quick { set opt(quick) 1 }
		--no-growth { set opt(growth) 0; set narrowed 1 }
		--no-fairness { set opt(fairness) 0; set narrowed 1 }
		--no-syscalls { set opt(syscalls) 0; set narrowed 1 }
		default { catch usage; exit 0 }
	    }
	    continue
	}
	if {![llength $argv]} {
	    fail "option $arg needs a value (see bench/run --help)"
	}
	set argv [lassign $argv value]
	switch -- $arg {
	    --workers {
		set opt(workers) [split $value ,]
		foreach w $opt(workers) {
		    if {![string is integer -strict $w] || $w < 1} {
			fail "bad worker count \"$w\""
		    }
		}
		set narrowed 1
	    }
	    --handlers {
		set opt(handlers) [chooseFrom handler $value $allHandlers]
		set narrowed 1
	    }
	    --peers {
		set opt(peers) [chooseFrom peer $value $allPeers]
		set narrowed 1
	    }
	    --duration {
		if {![string is integer -strict $value] || $value < 1} {
		    fail "bad duration \"$value\": whole seconds, at least 1"
		}
		set opt(duration) $value
		set narrowed 1
	    }
	    --concurrency {
		if {![string is integer -strict $value] || $value < 1} {
		    fail "bad concurrency \"$value\""
		}
		set opt(concurrency) $value
		set narrowed 1
	    }
	    --out {
		set opt(out) [file normalize $value]
	    }
	    --ss11 {
		if {![file isfile $value]} {
		    fail "bad --ss11 \"$value\": not a file (the path of\
			    socketservertcl 1.1's shared library)"
		}
		set opt(ss11) [file normalize $value]
	    }
	    --render {
		set opt(render) [file normalize $value]
	    }
	    --retries {
		if {![string is integer -strict $value] || $value < 0} {
		    fail "bad retries \"$value\""
		}
		set opt(retries) $value
	    }
	    --wait-quiet {
		if {![string is double -strict $value] || $value < 0} {
		    fail "bad --wait-quiet \"$value\": minutes"
		}
		set opt(waitQuiet) $value
	    }
	    default {
		fail "unknown option \"$arg\" (see bench/run --help)"
	    }
	}
    }
    if {$opt(quick)} {
	if {$opt(workers) eq {1 2 4 16 64}} {
	    set opt(workers) {2 16 64}
	}
	set opt(duration) 1
	set opt(growth) 0
	set opt(syscallConns) 2000
	set narrowed 1
    }
    if {$opt(ss11) ne "" && "ss11" ni $opt(peers)} {
	lappend opt(peers) ss11
    }
    if {"ss11" in $opt(peers) && $opt(ss11) eq ""} {
	fail "peer ss11 needs --ss11 LIBRARY"
    }
    if {$opt(out) eq "" && $opt(render) ne ""} {
	set opt(out) $opt(render)
    }
    if {$opt(out) eq ""} {
	variable top
	if {$narrowed} {
	    set tmp [expr {[info exists ::env(TMPDIR)] ? $::env(TMPDIR) : "/tmp"}]
	    set opt(out) [file join $tmp socketserver-bench BENCHMARKS.md]
	} else {
	    set opt(out) [file join $top doc BENCHMARKS.md]
	}
    }
    set opt(full) [expr {!$narrowed}]
    set opt(budget) [expr {$opt(quick) ? 110 : 540}]
}

# bench::native --
#	Whether a peer is a C program (nginx, the floor) that only answers,
#	rather than a Tcl server running the handler.
proc bench::native {kind} {
    expr {$kind in {nginx floor}}
}

proc bench::fail {msg} {
    puts stderr "bench: $msg"
    exit 2
}

proc bench::log {msg} {
    puts "[clock format [clock seconds] -format %H:%M:%S] $msg"
    flush stdout
}

# bench::record --
#	Remembers a command line for the report's "exact commands" list.
proc bench::record {line} {
    variable commands
    if {$line ni $commands} {
	lappend commands $line
    }
}

# The driver's parts, one job each.
foreach part {procfs peers load measure extras targets plot report} {
    source [file join $bench::here $part.tcl]
}
unset part

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

# bench::waitQuiet --
#	With --wait-quiet: polls the 1-minute load average every 30 s until
#	it is below 0.7, for at most that many minutes. Returns {seconds
#	quiet}, quiet 0 when it gave up. The run's clock starts afterwards.
proc bench::waitQuiet {} {
    variable opt
    variable started
    if {$opt(waitQuiet) <= 0} {
	return {0 1}
    }
    set t0 [clock seconds]
    set deadline [expr {$t0 + round($opt(waitQuiet) * 60)}]
    while {[lindex [loadavg] 0] >= 0.7} {
	if {[clock seconds] >= $deadline} {
	    log "still loaded ([loadavg]) after $opt(waitQuiet) min; going on"
	    set started [clock seconds]
	    return [list [expr {[clock seconds] - $t0}] 0]
	}
	log "waiting for a quiet machine: load [loadavg]"
	after 30000
    }
    set started [clock seconds]
    return [list [expr {[clock seconds] - $t0}] 1]
}

# bench::saveState / loadState --
#	Everything the report is made from, kept base64-encoded in an HTML
#	comment at the end of the report, so that `bench/run --render FILE`
#	can write the report again (after editing bench/notes.md, say)
#	without measuring again.
proc bench::saveState {} {
    variable opt
    variable results
    variable extra
    variable commands
    variable cpuLoops
    variable started
    variable state
    set data [list opt [array get opt] results $results extra $extra \
	    commands $commands cpuLoops $cpuLoops started $started \
	    state $state]
    set b64 [binary encode base64 -maxlen 76 \
	    [zlib compress [encoding convertto utf-8 $data] 9]]
    return "<!-- bench-data zlib (bench/run --render reads this)\n$b64\n-->"
}

proc bench::loadState {file} {
    variable opt
    variable results
    variable extra
    variable commands
    variable cpuLoops
    variable started
    variable state
    if {![regexp {<!-- bench-data( zlib)?[^\n]*\n([A-Za-z0-9+/=\n]+)-->} \
	    [readFile $file] -> zipped b64]} {
	fail "$file has no bench-data to render from"
    }
    set bytes [binary decode base64 $b64]
    if {$zipped ne ""} {
	set bytes [zlib decompress $bytes]
    }
    set data [encoding convertfrom utf-8 $bytes]
    set out $opt(out)
    array set opt [dict get $data opt]
    set opt(out) $out
    foreach v {results extra commands cpuLoops started state} {
	set $v [dict get $data $v]
    }
}

# bench::finish --
#	Plots, report, and the targets on stdout.
proc bench::finish {} {
    variable opt
    variable state
    variable rundir
    file mkdir [file dirname $opt(out)]
    set plots [plot [file dirname $opt(out)]]
    set out [report [dict get $state machine] [dict get $state load0] \
	    [dict get $state load1] $plots]
    foreach row [targets] {
	lassign $row t m v
	log "target: $t: $m: [string map {** {}} $v]"
    }
    log "report: $out"
    foreach p $plots {
	log "plot: $p"
    }
}

proc bench::main {argv} {
    variable opt
    variable rundir
    variable cpuLoops
    variable results
    variable tclsh
    variable state

    parseArgs $argv
    # bench/run kills this process group on exit, Ctrl-C included.
    catch {id process group set}
    set tmp [expr {[info exists ::env(TMPDIR)] ? $::env(TMPDIR) : "/tmp"}]
    set rundir [file join $tmp ssbench.[pid]]
    if {[info exists ::env(BENCH_RUNDIR)] && $::env(BENCH_RUNDIR) ne ""} {
	set rundir $::env(BENCH_RUNDIR)
    }
    file mkdir $rundir
    if {$opt(render) ne ""} {
	loadState $opt(render)
	finish
	file delete -force $rundir
	return
    }
    foreach tool {ab} {
	if {[auto_execok $tool] eq ""} {
	    fail "$tool not found (tools/setup installs apache2-utils)"
	}
    }
    set waited [waitQuiet]
    set load0 [loadavg]
    set machine [machine]
    log "socketserver benchmark: [dict get $machine cpu],\
	    [dict get $machine cores] cores, load $load0"
    set cpuLoops [calibrate]
    log "cpu handler: $cpuLoops loop iterations (~1 ms)"

    # Peers side by side for each worker count, so that the ratios the
    # targets compare are measured close together in time. Plain Tcl (one
    # process) runs once per handler, beside the 2-worker runs.
    set how [list -t $opt(duration)]
    set plainAt [expr {2 in $opt(workers) ? 2 : [lindex $opt(workers) 0]}]
    set plan {}
    foreach handler $opt(handlers) {
	foreach w $opt(workers) {
	    foreach kind $opt(peers) {
		if {[native $kind] && $handler ne "trivial"} {
		    continue	;# only answers; no Tcl work to compare
		}
		if {$kind eq "plain" && $w != $plainAt} {
		    continue
		}
		lappend plan [list $kind [expr {$kind eq "plain" ? 1 : $w}] \
			$handler]
	    }
	}
    }
    variable remaining [llength $plan]
    if {$opt(fairness) && "socketserver" in $opt(peers)} {
	incr remaining 3
    }
    foreach run $plan {
	lassign $run kind w handler
	set r [measureQuiet $kind $w $handler $how]
	lappend results $r
	show $r
    }
    if {$opt(fairness) && "socketserver" in $opt(peers)} {
	fairness
    }
    if {$opt(growth) && "socketserver" in $opt(peers)} {
	growth
    }
    if {$opt(syscalls)} {
	syscalls
    }
    variable retried
    set cmdline "bench/run"
    if {$opt(quick) && [info exists ::env(BENCH_QUICK)]} {
	set cmdline "BENCH_QUICK=$::env(BENCH_QUICK) $cmdline"
    }
    if {[llength $argv]} {
	append cmdline " [join $argv]"
    }
    set state [dict create machine $machine load0 $load0 load1 [loadavg] \
	    finished [clock seconds] waited $waited retried $retried \
	    command $cmdline]
    finish
    file delete -force $rundir
}

bench::main $argv
