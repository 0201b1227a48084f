package mpegts

// OnceParamsTS is gstTS for the package's external tests.
var OnceParamsTS = gstTS
