package testmedia

import "os"

func tempFile() (string, error) {
	f, err := os.CreateTemp("", "relaymesh-read-*.nut")
	if err != nil {
		return "", err
	}
	f.Close()
	return f.Name(), nil
}
