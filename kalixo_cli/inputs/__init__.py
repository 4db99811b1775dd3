"""Reading what users give kalixo: order files, bulk files, positions in JSON."""
