package agent

// extensions holds the state of the parts built in their own files, so
// each part adds fields here without touching agent.go: cluster.go,
// ops.go and objects.go.
type extensions struct {
	cluster clusterState
	ops     opsState
	objects objectsState
}
