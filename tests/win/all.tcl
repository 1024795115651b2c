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
source [file join [file dirname [info script]] .. summary.tcl]

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

RunAllAndExit $tmp
