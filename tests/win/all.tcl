# all.tcl --
#
#	Runs every tests/win/*.test file, each in its own Windows tclsh
#	(under wine in `make test-win`), prints tcltest's totals and then one
#	line "tcltest: N passed, N failed, N skipped", and exits non-zero
#	when any test failed or any file died, as tests/all.tcl does for the
#	Unix suites. The package comes from TCLLIBPATH. Options are
#	tcltest's: -file, -notfile, -match, -verbose, ...

package require tcltest 2.5
namespace import ::tcltest::*

foreach var {TMPDIR TEMP TMP} {
    if {[info exists env($var)]} {
	set tmp $env($var)
	break
    }
}
set tmp [file join [expr {[info exists tmp] ? $tmp : "."}] \
	socketserver-wintests-[pid]]
file mkdir $tmp
configure -testdir [file dirname [file normalize [info script]]] \
	-singleproc 0 -tmpdir $tmp
configure {*}$argv

# runAllTests sums the files' totals in ::tcltest::numTests and resets it
# in its final cleanupTests; keep a copy just before that.
rename ::tcltest::cleanupTests ::tcltest::CleanupTestsUnwrapped
proc ::tcltest::cleanupTests {{calledFromAllFile 0}} {
    if {$calledFromAllFile} {
	set ::summary [array get ::tcltest::numTests]
    }
    uplevel 1 [list ::tcltest::CleanupTestsUnwrapped $calledFromAllFile]
}

set ::summary {Total 0 Passed 0 Skipped 0 Failed 0}
set failed [runAllTests]
set n [dict create {*}$::summary]
# A file that died outside any test has no failed test to its name, but
# it failed: count it, so the summary never says 0 failed for a failure.
if {$failed && [dict get $n Failed] == 0} {
    dict set n Failed 1
}
puts [outputChannel] "tcltest: [dict get $n Passed] passed,\
	[dict get $n Failed] failed, [dict get $n Skipped] skipped"
flush [outputChannel]
catch {file delete -force $tmp}
exit [expr {$failed || [dict get $n Failed] > 0 || [dict get $n Total] == 0}]
