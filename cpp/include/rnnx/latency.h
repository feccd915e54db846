// Latency statistics over repeated calls, as the runners' --bench prints them.
#pragma once

#include <string>
#include <vector>

namespace rnnx {

struct LatencySummary {
  size_t calls = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0, mean_us = 0, min_us = 0, max_us = 0;

  std::string to_string() const;  // "p50 81.2 us, p90 90.4 us, p99 120.0 us (mean ..., ...)"
};

// Percentiles with linear interpolation between ranks (numpy's default).
LatencySummary summarize_latency(std::vector<double> microseconds);

}  // namespace rnnx
