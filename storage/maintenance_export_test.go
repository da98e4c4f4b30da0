package storage

// MaintenanceLockKey is the maintenance advisory lock, for tests that hold it.
const MaintenanceLockKey = maintenanceLockKey
