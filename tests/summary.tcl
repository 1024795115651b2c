# summary.tcl --
#
#	Shared by tests/all.tcl and tests/win/all.tcl. runAllTests only
#	returns a flag; RunAllAndExit runs the suite as configured, prints
#	tcltest's totals and then one line "tcltest: N passed, N failed, N
#	skipped", deletes tmp, and exits non-zero when any test failed or any
#	file died.

# runAllTests sums the files' totals in ::tcltest::numTests and resets it
# in its final cleanupTests; keep a copy just before that.
rename ::tcltest::cleanupTests ::tcltest::CleanupTestsUnwrapped
proc ::tcltest::cleanupTests {{calledFromAllFile 0}} {
    if {$calledFromAllFile} {
	set ::summary [array get ::tcltest::numTests]
    }
    uplevel 1 [list ::tcltest::CleanupTestsUnwrapped $calledFromAllFile]
}

proc RunAllAndExit {tmp} {
    set ::summary {Total 0 Passed 0 Skipped 0 Failed 0}
    set failed [::tcltest::runAllTests]
    set n [dict create {*}$::summary]
    # A file that died outside any test has no failed test to its name,
    # but it failed: count it, so the summary never says 0 failed for a
    # failure.
    if {$failed && [dict get $n Failed] == 0} {
	dict set n Failed 1
    }
    set out [::tcltest::outputChannel]
    puts $out "tcltest: [dict get $n Passed] passed,\
	    [dict get $n Failed] failed, [dict get $n Skipped] skipped"
    flush $out
    catch {file delete -force $tmp}
    exit [expr {$failed || [dict get $n Failed] > 0
	    || [dict get $n Total] == 0}]
}
