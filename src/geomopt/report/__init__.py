"""results/ -> tables, figures and reports (pure functions over results files)."""
