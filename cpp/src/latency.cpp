#include "rnnx/latency.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "rnnx/error.h"

namespace rnnx {

namespace {

double percentile(const std::vector<double>& sorted, double q) {
  const double rank = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<size_t>(rank);
  const size_t above = std::min(below + 1, sorted.size() - 1);
  const double weight = rank - static_cast<double>(below);
  return sorted[below] * (1 - weight) + sorted[above] * weight;
}

}  // namespace

LatencySummary summarize_latency(std::vector<double> microseconds) {
  if (microseconds.empty()) throw Error("no latency samples to summarize");
  std::sort(microseconds.begin(), microseconds.end());
  LatencySummary summary;
  summary.calls = microseconds.size();
  summary.p50_us = percentile(microseconds, 50);
  summary.p90_us = percentile(microseconds, 90);
  summary.p99_us = percentile(microseconds, 99);
  summary.mean_us = std::accumulate(microseconds.begin(), microseconds.end(), 0.0) /
                    static_cast<double>(microseconds.size());
  summary.min_us = microseconds.front();
  summary.max_us = microseconds.back();
  return summary;
}

std::string LatencySummary::to_string() const {
  char line[256];
  std::snprintf(line, sizeof(line),
                "p50 %.1f us, p90 %.1f us, p99 %.1f us (mean %.1f us, min %.1f us, max %.1f us, "
                "%zu calls)",
                p50_us, p90_us, p99_us, mean_us, min_us, max_us, calls);
  return line;
}

}  // namespace rnnx
