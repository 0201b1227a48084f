package center

import "github.com/relaymesh/relaymesh/media/relay"

// An on-demand pull is a relay.Puller.
type (
	relayTarget = relay.Target
	relayStatus = relay.Status
	pullConfig  = relay.PullConfig
	puller      = relay.Puller
)

var newPuller = relay.NewPuller

// pullProtocol is the hub publisher protocol of a relay SRT pull.
const pullProtocol = "srt-pull"
