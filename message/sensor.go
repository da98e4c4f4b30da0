package message

// SensorReading is one measurement, travelling as [NameSensorReading] with
// Type topic.Telemetry.
type SensorReading struct {
	// Metric names what was measured, such as "temperature".
	Metric string `msgpack:"metric" json:"metric"`
	// Value is the measurement, in Unit.
	Value float64 `msgpack:"value" json:"value"`
	// Unit is the unit of Value, such as "Cel" (UCUM codes are recommended).
	Unit string `msgpack:"unit,omitempty" json:"unit,omitempty"`
}
