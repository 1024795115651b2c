# adopt.tcl --
#
#	::socketserver::adopt: run a server object that listens by itself
#	(tcllib's ::httpd::server binds its port in its constructor) from
#	socketserver workers instead. The object is created as usual, except
#	that the `socket -server` calls made while it is being constructed
#	listen on nothing; connections then reach it through its own accept
#	method, named as the handler:
#
#	    ::socketserver::adopt ::httpd::server HTTPD port $port
#	    ::socketserver::socket client -concurrency 100 {HTTPD connect}
#
#	Only the constructor is affected, and only `socket -server`: every
#	other socket call, then and later, is the real one.

namespace eval ::socketserver::adopt {
    variable depth 0	;# Constructors running under adopt (nested adopts).
}

# ::socketserver::adopt --
#	Creates object name of class (with class's constructor arguments)
#	without letting it listen. Returns the object's qualified name.

proc ::socketserver::adopt {class name args} {
    variable adopt::depth
    if {[incr depth] == 1} {
	rename ::socket ::socketserver::adopt::RealSocket
	interp alias {} ::socket {} ::socketserver::adopt::Socket
    }
    try {
	set name [uplevel 1 [list $class create $name {*}$args]]
	return [uplevel 1 [list namespace which -command $name]]
    } finally {
	if {[incr depth -1] == 0} {
	    interp alias {} ::socket {}
	    rename ::socketserver::adopt::RealSocket ::socket
	}
    }
}

namespace eval ::socketserver::adopt {

# Socket --
#	::socket while an adopted object is constructed: `socket -server`
#	returns an empty name (a listener that is no channel: closing it
#	fails, and tcllib catches that), anything else is the real socket.

proc Socket {args} {
    if {"-server" in [lrange $args 0 end-1]} {
	return ""
    }
    tailcall RealSocket {*}$args
}

}
