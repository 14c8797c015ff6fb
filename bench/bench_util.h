// What the benchmarks share: statistics, running a job that must succeed,
// and finding the fanout binary. (A child's CPU time and memory: subprocess.h.)
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "client/job_client.h"

namespace fanout::bench {

double Median(std::vector<double> v);
double Percentile(std::vector<double> v, double p);

// Runs a job quietly; an error unless every task succeeded.
Result<client::JobReport> RunOk(client::JobClient& client, const pb::JobSpec& spec);

// The fanout executable next to the running benchmark.
std::string FanoutNextToUs();

}  // namespace fanout::bench
