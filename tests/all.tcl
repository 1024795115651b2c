# all.tcl --
#
#	Runs every tests/*.test file, each in its own tclsh, prints tcltest's
#	totals and then one line "tcltest: N passed, N failed, N skipped",
#	and exits non-zero when any test failed or any file died (runAllTests
#	only returns a flag). Options are tcltest's: -file, -notfile, -match,
#	-verbose, ...

package require tcltest 2.5
namespace import ::tcltest::*
source [file join [file dirname [info script]] summary.tcl]

set tmp [file join [expr {[info exists env(TMPDIR)] ? $env(TMPDIR) : "/tmp"}] \
	socketserver-tests-[pid]]
file mkdir $tmp
# tests/win/ is the Windows suite, run under wine by `make test-win`.
configure -testdir [file dirname [file normalize [info script]]] \
	-singleproc 0 -tmpdir $tmp -asidefromdir {win unit soak fuzz}
configure {*}$argv

RunAllAndExit $tmp
