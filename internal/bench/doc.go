// Package bench measures a Lintel deployment end to end, each figure
// beside a raw baseline measured in the same run, so that the ratio between
// them survives a noisy machine. It is the harness behind "lintelctl
// bench".
//
// [Run] runs the scenarios [Config] selects (see [Scenarios]) with the
// libraries the binaries wire: central.Start, an edgekit node and its
// access service, devicekit clients, the gateway's handler and the storage
// ingest, against real embedded nats-servers on random ports and a real
// PostgreSQL (and TimescaleDB when reachable). It returns a [Report]: per
// scenario, [Figure]s each with its baseline, their ratio and whether the
// scenario's goal was met. [Report.WriteTable] prints it.
//
// Some scenarios need processes of their own (the footprint of an edge,
// the devices of the scale run): [Config.Child] starts them, and the child
// runs [RunChild]. Without it they report "n/a" or run in-process.
//
// Quick mode ([Config.Quick]) runs every scenario at a small size; it is
// for checking that the harness works, not for figures.
package bench
