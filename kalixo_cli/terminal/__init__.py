"""What reaches a person or a pipe: output, views, PIN files, --jq, the log."""
