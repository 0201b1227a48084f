package edge

import "github.com/relaymesh/relaymesh/media/relay"

// The backbone uplink is a relay.Pusher.
type (
	relayTarget = relay.Target
	relayStatus = relay.Status
	pushConfig  = relay.PushConfig
	pusher      = relay.Pusher
)

var newPusher = relay.NewPusher

const relayRunning = relay.StateRunning
