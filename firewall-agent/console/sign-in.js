// The sign-in page: hide the error line while it is empty.
const error = document.getElementById('sign-in-error');
if (!error.textContent.trim()) error.hidden = true;
