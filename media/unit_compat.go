package media

// Transitional: the names media/unit took over, so the tree builds while
// its references move (/tmp/iss/unit-rename.sh rewrites them and deletes
// this file).

import "github.com/relaymesh/relaymesh/media/unit"

type (
	Packet            = unit.Packet
	Kind              = unit.Kind
	CodecInfo         = unit.CodecInfo
	VideoTag          = unit.VideoTag
	AudioTag          = unit.AudioTag
	MalformedTagError = unit.MalformedTagError
	Tracks            = unit.Tracks
	Unwrapper         = unit.Unwrapper
)

const (
	KindVideo           = unit.KindVideo
	KindAudio           = unit.KindAudio
	KindData            = unit.KindData
	KindTS              = unit.KindTS
	TracksUnknown       = unit.TracksUnknown
	TracksAudioOnly     = unit.TracksAudioOnly
	TracksVideo         = unit.TracksVideo
	RTMPChunkSize       = unit.RTMPChunkSize
	RTMPHeaderScratch   = unit.RTMPHeaderScratch
	RTMPMessageStreamID = unit.RTMPMessageStreamID
	FLVHeaderScratch    = unit.FLVHeaderScratch
)

var (
	AppendFLVTag     = unit.AppendFLVTag
	IsMetaData       = unit.IsMetaData
	WithSetDataFrame = unit.WithSetDataFrame
	ParseAudioTag    = unit.ParseAudioTag
	ParseVideoTag    = unit.ParseVideoTag
	ParseHeader      = unit.ParseHeader
	MetaDataPacket   = unit.MetaDataPacket
	TagPacket        = unit.TagPacket
	DeclaredTracks   = unit.DeclaredTracks
)
