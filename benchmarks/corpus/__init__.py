"""The real-model corpus: the table of published models and the script that lays them out."""
