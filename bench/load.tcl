# load.tcl --
#
#	The load generator: ab (apache2-utils), one new TCP connection per
#	request, and the parsing of what it reports.

# bench::ab --
#	Runs ab against 127.0.0.1:port. how is "-n N" or "-t SECONDS".
#	Returns a dict: complete failed rps p50 p99 (ms) exit output.
proc bench::ab {port concurrency how} {
    variable rundir
    set csv [file join $rundir ab.csv]
    file delete $csv
    set args [list -r -s 30 -c $concurrency]
    lassign $how mode value
    if {$mode eq "-t"} {
	# -t alone caps the run at 50,000 requests; -n after it lifts that.
	lappend args -t $value -n 100000000
    } else {
	lappend args -n $value
    }
    lappend args -e $csv http://127.0.0.1:$port/
    record "ab [string map [list $csv ab.csv $port PORT] $args]"
    set t0 [childTicks]
    set code [catch {exec ab {*}$args 2>@1} out]
    set abTicks [expr {[childTicks] - $t0}]
    set r [dict create exit $code output $out complete 0 failed 0 \
	    rps 0 p50 {} p99 {} abTicks $abTicks]
    regexp -line {^Complete requests:\s+(\d+)} $out -> complete
    regexp -line {^Failed requests:\s+(\d+)} $out -> failedReq
    regexp -line {^Non-2xx responses:\s+(\d+)} $out -> non2xx
    regexp -line {^Requests per second:\s+([\d.]+)} $out -> rps
    regexp -line {^Time taken for tests:\s+([\d.]+)} $out -> secs
    foreach v {complete rps secs} {
	if {[info exists $v]} {
	    dict set r $v [set $v]
	}
    }
    set failed 0
    foreach v {failedReq non2xx} {
	if {[info exists $v]} {
	    incr failed [set $v]
	}
    }
    if {$code && ![info exists complete]} {
	incr failed 1	;# ab gave up: count the run as failing
    }
    dict set r failed $failed
    if {[file exists $csv]} {
	foreach line [split [readFile $csv] \n] {
	    lassign [split $line ,] pct ms
	    if {$pct eq "50"} {
		dict set r p50 $ms
	    } elseif {$pct eq "99"} {
		dict set r p99 $ms
	    }
	}
    }
    return $r
}
