"""Security Hub: GetFindings / BatchUpdateFindings over the advisor's findings, the standard and its controls."""
