// Package media is relaymesh's data plane: the stream hub (one writer, many
// readers, GOP cache), the FLV <-> MPEG-TS remux it runs (media/mpegts) and
// the protocol endpoints below it. The packet and codec vocabulary is the
// leaf package media/unit. It knows nothing of the cluster.
package media
