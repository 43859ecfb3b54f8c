"""What the user brings: claimed formulas and their own backward code, judged against a derivation."""
