/*
 * rateLimit_test.cpp --
 *
 *	Unit tests for RateLimiter (generic/ssRateLimit.h), which bounds the
 *	dispatcher's `-log` messages per kind of event.
 */

#include "ssRateLimit.h"

#include <gtest/gtest.h>

using socketserver::RateLimiter;

namespace {

using Limiter = RateLimiter<int>;
using std::chrono::milliseconds;

} // namespace

TEST(RateLimiter, ABurstGoesOutThenTheRestIsCountedAndReported)
{
    Limiter limiter;
    Limiter::Clock::time_point t0{};
    uint64_t suppressed = 99;
    for (int i = 0; i < Limiter::kBurst; i++) {
	EXPECT_TRUE(limiter.Allow(1, t0 + milliseconds(i), suppressed));
	EXPECT_EQ(suppressed, 0u);
    }
    for (int i = 0; i < 7; i++) {
	EXPECT_FALSE(limiter.Allow(1, t0 + milliseconds(500), suppressed));
    }
    /* A later window: the first message says what was left out. */
    EXPECT_TRUE(limiter.Allow(1, t0 + milliseconds(1001), suppressed));
    EXPECT_EQ(suppressed, 7u);
    EXPECT_TRUE(limiter.Allow(1, t0 + milliseconds(1002), suppressed));
    EXPECT_EQ(suppressed, 0u);
}

TEST(RateLimiter, KindsAreLimitedApart)
{
    Limiter limiter;
    Limiter::Clock::time_point t0{};
    uint64_t suppressed;
    for (int i = 0; i < Limiter::kBurst; i++) {
	ASSERT_TRUE(limiter.Allow(1, t0, suppressed));
    }
    EXPECT_FALSE(limiter.Allow(1, t0, suppressed));
    EXPECT_TRUE(limiter.Allow(2, t0, suppressed));
}
