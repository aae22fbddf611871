// Package bench is the load-test bench suite of Campaign Manager: an open-loop load driver
// that sends events over HTTP (API key, many connections) or straight to NATS, measures
// end-to-end latency from the scheduled send time to the reward on the REWARDS stream in
// HDR histograms, measures baselines in the same run (raw JetStream publish, a bare Fiber
// JSON handler, CEL evaluation of the same rule set), and writes a JSON result, a Markdown
// summary and an SVG chart under bench/results/<scenario>-<timestamp>/.
//
// The driver binary is bench/cmd/campaignbench; Run is its whole body. Run either starts
// campaignd as a child process (built from ./cmd/campaignd, with a private data dir) or
// targets an existing server. While a phase runs, Run owns one sender goroutine per
// connection, a scheduler goroutine, a NATS subscription handler for rewards and a
// progress goroutine printing one line per second; all stop before the phase returns.
package bench
