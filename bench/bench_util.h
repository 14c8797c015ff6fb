// What the benchmarks share: statistics, running a job that must succeed,
// finding the fanout binary, and reading a child's CPU time and memory.
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

// CPU time (user + system) a process has used, in milliseconds.
double CpuMillis(pid_t pid);
// Resident memory of a process now (VmRSS) and at its peak (VmHWM), in MiB.
double RssMiB(pid_t pid);
double PeakRssMiB(pid_t pid);

}  // namespace fanout::bench
