/*
 * ssRateLimit.h --
 *
 *	How often the dispatcher may say why it dropped something (`server
 *	-log`): for each kind of event, at most kBurst messages per window;
 *	the rest are counted, and the first message of a later window says
 *	how many were left out. No Tcl, no clock of its own (the caller
 *	passes the time), so it is unit-tested alone.
 */

#ifndef SS_RATE_LIMIT_H
#define SS_RATE_LIMIT_H

#include <chrono>
#include <cstdint>
#include <map>

namespace socketserver {

template <class Kind>
class RateLimiter {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr int kBurst = 5;
    static constexpr std::chrono::milliseconds kWindow{1000};

    /*
     * Whether a message of kind may go out at now. When it may and
     * messages of that kind were left out before, suppressed says how
     * many (and is reset); otherwise suppressed is 0.
     */
    bool Allow(Kind kind, Clock::time_point now, uint64_t &suppressed) {
	Slot &slot = slots_[kind];
	suppressed = 0;
	if (slot.sent == 0 || now - slot.start >= kWindow) {
	    slot.start = now;
	    slot.sent = 0;
	}
	if (slot.sent >= kBurst) {
	    slot.suppressed++;
	    return false;
	}
	slot.sent++;
	suppressed = slot.suppressed;
	slot.suppressed = 0;
	return true;
    }

private:
    struct Slot {
	Clock::time_point start{};
	int sent = 0;
	uint64_t suppressed = 0;
    };
    std::map<Kind, Slot> slots_;
};

} // namespace socketserver

#endif /* SS_RATE_LIMIT_H */
