# soak.tcl --
#
#	The soak test (`make soak`; not part of `make test`): many
#	connections through a few forked workers while workers are killed
#	at random, bounded in time. tests/soak/client.py makes the
#	connections, one HTTP/1.0 request each, and accounts for every one;
#	tests/soak/server.tcl serves them and is also the chaos monkey.
#	Reports:
#	  - connections made, answered, lost; lost connections must all be
#	    ones a killed worker held (at most one per kill that found its
#	    victim holding a connection): "lost outside killed workers' hands"
#	    must be 0;
#	  - the server's counters (accepted, acked, redispatched ...);
#	  - descriptor and resident-memory growth of the server's process and
#	    of the workers, from after a warm-up to the end.
#	and writes the figures into doc/RELIABILITY.md, between the lines
#	"<!-- soak:begin -->" and "<!-- soak:end -->".
#
#	    tclsh soak.tcl ?-connections N? ?-workers N? ?-concurrency N?
#	                   ?-minutes M? ?-killevery {MIN MAX}? ?-doc PATH|""?
#
#	Exit status 0 when every promise held, 1 otherwise.

package require Tcl 8.6

set here [file dirname [file normalize [info script]]]
array set opt [list \
	-connections 1000000 \
	-workers 8 \
	-concurrency 16 \
	-minutes 10 \
	-killevery {100 500} \
	-doc [file join [file dirname [file dirname $here]] doc RELIABILITY.md]]
foreach {name value} $argv {
    if {![info exists opt($name)]} {
	puts stderr "usage: tclsh soak.tcl ?-connections N? ?-workers N?\
		?-concurrency N? ?-minutes M? ?-killevery {MIN MAX}? ?-doc PATH?"
	exit 2
    }
    set opt($name) $value
}
if {[auto_execok python3] eq ""} {
    puts stderr "soak: python3 is required (tests/soak/client.py)"
    exit 2
}
set started [clock seconds]
set deadline [expr {$started + int($opt(-minutes) * 60)}]

proc log {msg} {
    puts "[clock format [clock seconds] -format %H:%M:%S] $msg"
    flush stdout
}

# The server: a child process we talk to over its stdin/stdout.
set server [open |[list [info nameofexecutable] [file join $here server.tcl] \
	$opt(-workers) 2>@stderr] r+]
fconfigure $server -buffering line
lassign [gets $server] word port serverPid
fconfigure $server -blocking 0

# Whatever happens, the soak ends within its time and a minute.
after [expr {($deadline - [clock seconds] + 60) * 1000}] {
    puts stderr "soak: out of time"
    exit 1
}
if {$word ne "ready"} {
    puts stderr "soak: the server did not start"
    exit 1
}

# ask --
#	Sends the server a command and returns its one-line answer. Bounded:
#	a server that does not answer within 30 s ends the soak, failed.
proc ask {cmd} {
    puts $::server $cmd
    set ::answer ""
    fileevent $::server readable {
	if {[gets $::server line] >= 0} {
	    set ::answer [list ok $line]
	} elseif {[eof $::server]} {
	    set ::answer eof
	}
    }
    set timer [after 30000 {set ::answer timeout}]
    vwait ::answer
    after cancel $timer
    fileevent $::server readable {}
    if {[lindex $::answer 0] ne "ok"} {
	puts stderr "soak: the server did not answer \"$cmd\": $::answer"
	exit 1
    }
    return [lindex $::answer 1]
}

proc waitReady {} {
    set until [expr {[clock milliseconds] + 30000}]
    while {[clock milliseconds] < $until} {
	set i [ask info]
	if {[dict get $i ready] == $::opt(-workers)
		&& [dict get $i pending] == 0
		&& [dict get $i acked] == [dict get $i accepted]} {
	    return $i
	}
	after 50
    }
    return ""
}

# load --
#	Runs client.py: n connections, for at most seconds, concurrency c.
#	Keeps the event loop going (sampling the server every 10 s) while it
#	runs. Returns the dict client.py prints (ok short reset refused
#	timeout wrong made seconds).
proc load {n c seconds} {
    set cmd [list python3 [file join $::here client.py] $::port $n $c \
	    $seconds 30 2>@stderr]
    set ::loadOutput ""
    set ::loadDone 0
    set p [open |$cmd r]
    fconfigure $p -blocking 0
    fileevent $p readable [list apply {{p} {
	append ::loadOutput [read $p]
	if {[eof $p]} {
	    fconfigure $p -blocking 1
	    catch {close $p}
	    set ::loadDone 1
	}
    }} $p]
    set ::sampleTimer [after 10000 sample]
    vwait ::loadDone
    after cancel $::sampleTimer
    set result [string trim $::loadOutput]
    if {[catch {dict get $result made}]} {
	log "client.py said: $result"
	exit 1
    }
    return $result
}

set sampleTimer {}
set samples {}
proc sample {} {
    set i [ask info]
    lappend ::samples [list [expr {[clock seconds] - $::started}] \
	    [dict get $i accepted] [dict get $i serverfds] \
	    [dict get $i serverrss] [dict get $i kills]]
    log "accepted [dict get $i accepted] kills [dict get $i kills]\
	    server fds [dict get $i serverfds] rss [dict get $i serverrss] kB"
    set ::sampleTimer [after 10000 sample]
}

proc maxOf {list} {
    tcl::mathfunc::max 0 {*}$list
}

# 1. Warm-up, no chaos: everything allocated that will ever be.
log "server on port $port (pid $serverPid), $opt(-workers) workers"
set warm [load 5000 $opt(-concurrency) 60]
set before [waitReady]
if {$before eq ""} {
    puts stderr "soak: the server did not settle after the warm-up: [ask info]"
    exit 1
}
log "warm-up: $warm"

# 2. The soak, with chaos.
set seconds [expr {max(10, $deadline - [clock seconds] - 45)}]
ask [list chaos {*}$opt(-killevery)]
log "soak: $opt(-connections) connections, concurrency $opt(-concurrency),\
	at most $seconds s, a worker killed every $opt(-killevery) ms"
set run [load $opt(-connections) $opt(-concurrency) $seconds]
lassign [ask calm] - kills - busyKills
set after [waitReady]
if {$after eq ""} {
    set after [ask info]
    set settled 0
} else {
    set settled 1
}
close $server

# 3. Figures.
set made [dict get $run made]
set answered [dict get $run ok]
set lost [expr {[dict get $run short] + [dict get $run reset]
	+ [dict get $run timeout] + [dict get $run wrong]}]
set lostOutside [expr {max(0, $lost - $busyKills)}]
proc delta {key} {
    expr {[dict get $::after $key] - [dict get $::before $key]}
}
set accepted [delta accepted]
set fdGrowth [delta serverfds]
set rssGrowth [delta serverrss]
set workerFds [list [maxOf [dict get $before workerfds]] \
	[maxOf [dict get $after workerfds]]]
set workerRss [list [maxOf [dict get $before workerrss]] \
	[maxOf [dict get $after workerrss]]]
set ok [expr {$lostOutside == 0 && [dict get $run refused] == 0 && $settled
	&& $fdGrowth <= 0 && $made > 0 && $accepted == $made
	&& $answered + $lost == $made}]

set figures [list \
	"Date" [clock format $started -format "%Y-%m-%d %H:%M UTC" -gmt 1] \
	"Machine" "[exec nproc] CPUs, [exec uname -sr]" \
	"Asked for" "$opt(-connections) connections, $opt(-workers) workers,\
	    concurrency $opt(-concurrency), at most $opt(-minutes) min, a\
	    random worker killed every [join $opt(-killevery) -] ms" \
	"Connections made" "$made in [dict get $run seconds] s\
	    ([expr {round($made / max(0.1, [dict get $run seconds]))}]/s)" \
	"Answered in full" $answered \
	"Lost" "$lost (short [dict get $run short], reset\
	    [dict get $run reset], timeout [dict get $run timeout], wrong\
	    [dict get $run wrong]); refused [dict get $run refused]" \
	"Workers killed" "$kills, of which $busyKills held a connection\
	    when killed" \
	"Lost outside killed workers' hands" $lostOutside \
	"Server counters during the soak" "accepted $accepted, acked\
	    [delta acked], redispatched [delta redispatched], registered\
	    [delta registered], accept errors [delta accepterrors], rejected\
	    [delta rejected]" \
	"Server process descriptors" "[dict get $before serverfds] after\
	    warm-up, [dict get $after serverfds] at the end (growth $fdGrowth)" \
	"Server process resident memory" "[dict get $before serverrss] kB\
	    after warm-up, [dict get $after serverrss] kB at the end\
	    (growth $rssGrowth kB)" \
	"Worker descriptors (largest)" "[lindex $workerFds 0] after warm-up,\
	    [lindex $workerFds 1] at the end" \
	"Worker resident memory (largest)" "[lindex $workerRss 0] kB after\
	    warm-up, [lindex $workerRss 1] kB at the end" \
	"Settled afterwards" [expr {$settled ? "yes: every worker armed,\
	    nothing pending, every accepted connection acknowledged" : "NO"}] \
	"Verdict" [expr {$ok ? "PASS" : "FAIL"}]]

puts ""
foreach {key value} $figures {
    puts [format "%-45s %s" $key: $value]
}

# 4. Into doc/RELIABILITY.md, between the markers.
if {$opt(-doc) ne "" && [file exists $opt(-doc)]} {
    set f [open $opt(-doc)]
    set text [read $f]
    close $f
    set table "| Figure | Value |\n|---|---|\n"
    foreach {key value} $figures {
	append table "| $key | [regsub -all {\s+} $value { }] |\n"
    }
    append table "\nServer samples every 10 s (seconds since start,\
	    connections accepted, descriptors, resident kB, kills):\
	    [join [lmap s $samples {join $s /}] {, }]\n"
    set begin "<!-- soak:begin -->"
    set end "<!-- soak:end -->"
    set b [string first $begin $text]
    set e [string first $end $text]
    if {$b >= 0 && $e > $b} {
	set text "[string range $text 0 [expr {$b + [string length $begin] - 1}]]\n$table[string range $text $e end]"
	set f [open $opt(-doc) w]
	puts -nonewline $f $text
	close $f
	log "figures written to $opt(-doc)"
    } else {
	log "no soak markers in $opt(-doc): figures not written"
    }
}
exit [expr {!$ok}]
