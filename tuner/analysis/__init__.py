"""Records -> tables, plots and reports (markdown, HTML, the terminal). Reads experiments; never imports Ray or
torch."""
