"""Statistics, tables, figures and the claims check, from the files the analyses wrote: no model,
no torch. Imports only world and the root helpers; statistics and tables never import figure
code.
"""
