package lifecycle

import "time"

// CheckWindow checks an optional time window at time now: the end, when
// set, lies after now and after the start. Pass the zero time as now to
// accept an end in the past (config files: the object is then finished).
func CheckWindow(start, end *time.Time, now time.Time) error {
	if end != nil && !end.After(now) {
		return Invalidf("end_time", "%s is not in the future", end.Format(time.RFC3339))
	}
	if start != nil && end != nil && !end.After(*start) {
		return Invalidf("end_time", "must be after start_time")
	}
	return nil
}

// Ended reports whether the window's end has passed at now.
func Ended(end *time.Time, now time.Time) bool { return end != nil && !end.After(now) }

// Due reports whether a scheduled object should start at now.
func Due(start *time.Time, now time.Time) bool { return start != nil && !start.After(now) }

// SameTime reports whether two optional times are equal.
func SameTime(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }

// Resting is the state of an object that does not run: scheduled when it
// has a start time, finished when its window has ended, else standby.
func Resting(start, end *time.Time, now time.Time) State {
	switch {
	case Ended(end, now):
		return Finished
	case start != nil:
		return Scheduled
	}
	return Standby
}
