"""The line board: live figures, station states and shortages for supervisors."""
