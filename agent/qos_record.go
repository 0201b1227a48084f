package agent

// The record of the tc state the agent installed lives in
// netutil/tcrecord; these are the names ops.go uses for it.

import "github.com/relaymesh/relaymesh/netutil/tcrecord"

type qosTree = tcrecord.Tree

var (
	readQoSRecord  = tcrecord.Read
	writeQoSRecord = tcrecord.Write
	newQoSTree     = tcrecord.NewTree
	removeRecorded = tcrecord.Remove
)
